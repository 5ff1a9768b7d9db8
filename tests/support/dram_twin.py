"""A symbolic twin of the DRAM-mode engine, to check a command stream's addressing without arithmetic.

Every word carries a tag (an int): the input's words, weight and requant words are tagged by their index;
an output word's tag hashes what produced it — the tags of its taps in order (padding: 0), its weight and
requant words' tags, and the descriptor's non-address fields. :func:`run_stream` executes the stream's LOADs,
STOREs and compute tiles (the AGU's Python twin, ``ref_agu``, walks each tile) on tagged buffers and DRAM;
:func:`run_resident` runs the program's own per-layer descriptors on tagged DRAM, as the resident engine
would. Equal tags at every activation word means every tile read the right words in the right order — and a
tile that read a word no one had written yet (a missing dependency) is reported.
"""

from __future__ import annotations

from fireforge.core.descriptor import Buffer, Op
from fireforge.hw.engine.agu import ref_agu
from fireforge.sw.dram_program import DramProgram, word_bytes

W_TAG, Q_TAG = 1 << 40, 2 << 40
_VALUE_FIELDS = ("op", "relu", "depthwise", "in_zp", "out_zp", "mult_a", "shift_a", "mult_b", "shift_b", "aux",
                 "kernel_h", "kernel_w", "g_count")


def _fields_tag(d: dict) -> int:
    return hash(tuple(int(getattr(d.get(f, 0), "value", d.get(f, 0))) for f in _VALUE_FIELDS))


def _pool_descriptor(d: dict) -> dict:
    """The max pool a tile's pool stage computes (``pool_en``), as a layer descriptor reading the tile's words
    from a scratch map (``out_addr`` 0, pitch ``og_count``) — the fields a MAXPOOL of the schedule has."""
    k, s, g = d["pool_k"], d["pool_s"], d["og_count"]
    pt, pl, w = d["pool_pad_t"], d["pool_pad_l"], d["out_w"]
    return {"op": Op.MAXPOOL, "depthwise": 1, "in_zp": d["out_zp"], "out_zp": d["out_zp"], "kernel_h": k,
            "kernel_w": k, "stride_h": s, "stride_w": s, "pad_t": pt, "pad_l": pl, "pad_en": 1, "g_count": 1,
            "in_h": d["out_h"], "in_w": w, "out_h": d["pool_out_h"], "out_w": d["pool_out_w"], "og_count": g,
            "win_addr0": -(pt * w + pl) * g, "row_step": s * w * g, "pix_step": s * g, "ky_step": w * g,
            "kx_step": g, "taps": k * k, "out_addr": d["out_addr"], "out_pitch": d["out_pitch"]}


def _compute(d: dict, act_read, weight_tag, quant_tag, write) -> None:
    """One descriptor on tagged memories: ``act_read(addr)``, ``weight_tag(addr)``, ``write(addr, tag)``; a
    fused pool (``pool_en``) pools the tile's words on their way out."""
    if d.get("pool_en"):
        scratch: dict[int, int] = {}
        _compute({**d, "pool_en": 0, "out_addr": 0, "out_pitch": d["og_count"]}, act_read, weight_tag,
                 quant_tag, scratch.__setitem__)
        _compute(_pool_descriptor(d), scratch.__getitem__, weight_tag, quant_tag, write)
        return
    d = {"weight_addr": 0, "quant_addr": 0, **d}
    ft, conv = _fields_tag(d), d["op"] == Op.CONV
    ins, ws = [], []
    for tap in ref_agu(d).taps:
        if tap.first:
            ins, ws = [], []
        ins.append(0 if tap.addr is None else act_read(tap.addr))
        if conv:
            ws.append(weight_tag(tap.w_addr))
        if tap.last:
            og = (tap.out_addr - d["out_addr"]) % d["out_pitch"] if d["out_pitch"] else 0
            q = quant_tag(d["quant_addr"] + og) if conv else 0
            write(tap.out_addr, hash((tuple(ins), tuple(ws), q, ft)))


class TwinError(AssertionError):
    pass


def initial_dram(dp: DramProgram, input_words: range) -> dict[int, int]:
    """Tags of DRAM before a run, by word address of the activation region (input words: 1 + index)."""
    return {w: 1 + w for w in input_words}


def run_resident(descriptors: list[dict], dram: dict[int, int]) -> dict[int, int]:
    """The per-layer descriptors (addresses in activation words; weight / quant words by index)."""
    mem = dict(dram)

    def read(a):
        if a not in mem:
            raise TwinError(f"resident read of unwritten word {a}")
        return mem[a]
    for d in descriptors:
        _compute(d, read, lambda a: W_TAG + a, lambda a: Q_TAG + a, mem.__setitem__)
    return mem


def run_stream(dp: DramProgram, config, dram: dict[int, int]) -> dict[int, int]:
    """The command stream on tagged buffers; DRAM activation words by word address (relative to the map's act)."""
    mem = dict(dram)
    m, v = dp.map, config.vector
    bufs = {Buffer.ACT: {}, Buffer.WEIGHTS: {}, Buffer.QUANT: {}}
    depth = {Buffer.ACT: config.act_depth, Buffer.WEIGHTS: config.weight_depth, Buffer.QUANT: config.quant_depth}

    def dram_tag(buffer, byte):
        wb = word_bytes(config, buffer)
        if buffer == Buffer.WEIGHTS:
            return W_TAG + (byte - m.weights) // wb
        if buffer == Buffer.QUANT:
            return Q_TAG + (byte - m.quant) // wb
        w = (byte - m.act) // v
        if w not in mem:
            raise TwinError(f"LOAD of DRAM activation word {w}, which nothing has written yet")
        return mem[w]

    for i, c in enumerate(dp.commands):
        op = c["op"]
        if op in (Op.LOAD, Op.STORE):
            buf, wb = bufs[c["buffer"]], word_bytes(config, c["buffer"])
            k = c["buf_addr"]
            for r in range(c["runs"]):
                for j in range(c["run_words"]):
                    byte = c["dram_addr"] + r * c["dram_stride"] + j * wb
                    if not 0 <= k < depth[c["buffer"]]:
                        raise TwinError(f"command {i}: buffer word {k} outside {c['buffer'].name} ({depth[c['buffer']]})")
                    if op == Op.LOAD:
                        buf[k] = dram_tag(c["buffer"], byte)
                    else:
                        if k not in buf:
                            raise TwinError(f"command {i}: STORE of ACT word {k}, never written")
                        mem[(byte - m.act) // v] = buf[k]
                    k += 1
        elif op == Op.END:
            break
        else:
            act, wts, qnt = bufs[Buffer.ACT], bufs[Buffer.WEIGHTS], bufs[Buffer.QUANT]

            def read(a, _i=i):
                if a not in act:
                    raise TwinError(f"command {_i}: tile reads ACT word {a}, never loaded")
                return act[a]

            def write(a, tag, _i=i):
                if not 0 <= a < depth[Buffer.ACT]:
                    raise TwinError(f"command {_i}: tile writes ACT word {a} outside the buffer")
                act[a] = tag
            _compute(c, read, lambda a: wts.get(a, -1), lambda a: qnt.get(a, -1), write)
    return mem

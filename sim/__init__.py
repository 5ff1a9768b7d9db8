"""fireforge.sim"""

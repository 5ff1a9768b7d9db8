"""fireforge.hw"""

"""fireforge.sw"""

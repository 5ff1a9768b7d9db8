"""fireforge.models"""

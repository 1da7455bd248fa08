"""scalefree.models"""

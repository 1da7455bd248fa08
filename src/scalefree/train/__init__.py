"""scalefree.train"""

"""scalefree.plots"""

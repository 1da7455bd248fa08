"""scalefree.experiments"""

"""scalefree.data"""

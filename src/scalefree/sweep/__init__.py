"""scalefree.sweep"""

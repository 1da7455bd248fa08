"""scalefree.optim"""

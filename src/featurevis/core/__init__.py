"""The engine and what it is made of: the frozen model, objectives, parameterizations,
transforms, the one optimization loop, shared losses, images and photos.

Nothing in ``core`` imports a recipe, the catalog or the CLI.
"""

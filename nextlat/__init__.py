"""nextlat: models, objectives, data, training and evaluation for the NextLat reproduction."""
__version__ = "0.1.0"

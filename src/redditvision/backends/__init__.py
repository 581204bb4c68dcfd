"""Training and prediction backends.

``local`` trains on this machine, ``vertex`` on Vertex AI AutoML, and ``automl`` on legacy
AutoML v1 (shut down by Google for Vision on 2024-03-31).
"""

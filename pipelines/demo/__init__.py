"""`lvd demo`: the whole job on a built-in synthetic corpus, on a CPU, in minutes.

In: an output folder and a training preset.
Out: the corpus, a curated and a filtered run, a trained model, generated videos judged
from their pixels, and one HTML page (OUT/index.html).
Runs every step through the real command line (pipelines.cli), so it uses every part.
"""

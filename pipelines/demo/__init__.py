"""`lvd demo`: the whole job on a built-in synthetic corpus, on a CPU, in minutes.

In: an output folder, a training preset and a task: `text` (text-to-video on moving
shapes) or `multiview` (orbits around objects from one image, SVD-MV).
Out: the corpus, curated (and for text, filtered) runs, a trained model, generated
videos judged from their pixels, and one HTML page (OUT/index.html).
Runs every step through the real command line (pipelines.cli), so it uses every part.
"""

"""Detection backends: each turns a decoded image into `Detection`s for the shared postprocessing."""

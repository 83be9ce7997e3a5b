"""Training: strategies, callbacks, resumable fit, and the two training stages.

Modules:
    strategy: `tf.distribute` strategies, mixed precision and XLA, and the
        resumable distributed dataset.
    callbacks: the callbacks of a run (resumable backups, sample frame
        strips, logs) and the output folder it writes.
    fit: `model.fit` that resumes a killed run at the step of its last
        backup, and the helpers the stages share.
    au_classifier: the AU classifier's stage: its data, training,
        evaluation and loading (frozen, for the talker).
    talker: the talker GAN's stage, with the frozen AU classifier.
    recipes: what the scripts in `recipes/` (and `autalk train RECIPE`)
        share: their options and runs, finding them by name.
"""

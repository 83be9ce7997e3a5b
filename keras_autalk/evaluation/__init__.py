"""Measuring generated talking-head videos against the real ones.

Modules:
    metrics: image quality (PSNR, SSIM, their mouth-region versions, CPBD
        sharpness), lip shape (dlib landmarks on the aligned crops and the
        landmark distance LMD), AU accuracy (Pearson, MAE, F1 of
        occurrence), identity (dlib face-embedding distance), and Keras
        metric wrappers for PSNR and SSIM.
    sync: lip-sync scores from the audio-visual sync expert, and its
        training.
    evaluate: scores talkers on a prepared split (`autalk evaluate`).
    speech_tracks: real recordings joined with pauses into labelled
        tracks, and their phone / noisy / reverberant versions.
    lip_sync: the measures on an output MP4 (lip opening vs speech
        envelope, pause ratio, lag, identity).
    real_speech: the real-speech benchmark (`autalk evaluate --real-speech`):
        tracks through `generate`, measured with `lip_sync`.
"""

"""Measuring generated talking-head videos against the real ones.

Modules:
    metrics: image quality (PSNR, SSIM, their mouth-region versions, CPBD
        sharpness), lip shape (dlib landmarks on the aligned crops and the
        landmark distance LMD), AU accuracy (Pearson, MAE, F1 of
        occurrence), identity (dlib face-embedding distance), and Keras
        metric wrappers for PSNR and SSIM.
    sync: lip-sync scores from the audio-visual sync expert, and its
        training.
    evaluate: `autalk evaluate`, which scores talkers on a prepared split.
    real_speech: the real-speech benchmark (`autalk evaluate --real-speech`):
        real recordings through `generate`, measured on the output MP4
        (lip opening vs speech envelope, pause ratio, lag, identity).
"""

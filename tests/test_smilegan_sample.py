"""SmileGAN on the Smile-GAN sample data (its own file, so that it runs beside test_smilegan.py)."""

from sklearn.metrics import adjusted_rand_score

from roisynth.smilegan import SmileGAN


def test_recovers_reference_sample_data(smilegan_sample):
    cn, pt, truth = smilegan_sample
    model = SmileGAN(max_retries=1, verbose=False, random_state=0).fit(cn, pt)
    assert adjusted_rand_score(truth, model.labels_) >= 0.95  # 1.000 measured; the issue asks 0.8

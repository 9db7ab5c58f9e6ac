import hashlib

import numpy as np
import rasterio
from rasterio.windows import Window

from geossl.synth import NODATA, SynthConfig, SyntheticScene, write_scene


def _digest(path):
    with rasterio.open(path) as src:
        return hashlib.sha256(src.read().tobytes()).hexdigest()


def test_same_seed_same_scene_and_other_seed_differs(tmp_path):
    a = write_scene(tmp_path / "a", SynthConfig(size=256, tile=128, seed=1))
    b = write_scene(tmp_path / "b", SynthConfig(size=256, tile=128, seed=1))
    c = write_scene(tmp_path / "c", SynthConfig(size=256, tile=128, seed=2))
    assert _digest(a["image"]) == _digest(b["image"])
    assert _digest(a["labels"]) == _digest(b["labels"])
    assert _digest(a["labels"]) != _digest(c["labels"])


def test_scene_is_georeferenced_with_nodata_border_and_coherent_classes(synth_dir):
    with rasterio.open(synth_dir / "scene.tif") as img, rasterio.open(synth_dir / "labels.tif") as lab:
        assert img.crs.to_epsg() == 32633 and img.count == 4 and img.nodata == NODATA
        assert img.block_shapes[0] == (128, 128)
        assert img.descriptions == ("blue", "green", "red", "nir")
        labels, image = lab.read(1), img.read()
        assert lab.colormap(1)[4][:3] == (0x68, 0xAA, 0x63)
    assert labels[0, 0] == NODATA and (image[:, 0, 0] == NODATA).all()  # corner outside the footprint
    present = set(np.unique(labels)) - {NODATA}
    assert present == {1, 2, 3, 4, 5, 6}
    # Spatially coherent: most pixels share their right neighbour's class.
    assert (labels[:, 1:] == labels[:, :-1]).mean() > 0.9
    # Classes are separable by their spectra: NIR of forest well above NIR of water.
    nir = image[3].astype(float)
    assert nir[labels == 4].mean() > 5 * nir[labels == 1].mean()


def test_windows_render_the_same_pixels_as_the_whole_scene():
    scene = SyntheticScene(SynthConfig(size=256, tile=64, seed=5))
    whole_img, whole_lab = scene.window(Window(0, 0, 256, 256))
    part_img, part_lab = scene.window(Window(64, 128, 64, 64))
    np.testing.assert_array_equal(part_lab, whole_lab[128:192, 64:128])
    # Sensor noise is drawn per window, so only the noise-free structure must agree.
    assert np.abs(part_img.astype(int) - whole_img[:, 128:192, 64:128]).mean() < 200

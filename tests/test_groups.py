"""Neuron groups and the activation grid (Olah et al. 2018) on the real lite0, at small sizes."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import featurevis as fv
from featurevis.core.engine import activations
from featurevis.core.samples import center_square
from featurevis.core.visualize import direction_scores

LAYER = "_blocks.8"

pytestmark = pytest.mark.usefixtures("one_thread")


def _photo_acts(model, photo, layer=LAYER):
    """``layer``'s C×h×w activations of the square the recipes feed."""
    with torch.no_grad():
        return activations(model, center_square(photo, model.input_size), [layer])[layer][0]


@pytest.fixture(scope="module")
def chelsea_groups(lite0, photos):
    torch.set_num_threads(1)
    return fv.groups(lite0, photos["chelsea"], LAYER, groups=4, size=64, steps=48, progress=False)


def test_reconstruction_error_falls_as_groups_are_added(lite0, photos):
    errors = [
        fv.groups(lite0, photos["chelsea"], LAYER, groups=k, size=32, steps=1, progress=False).error
        for k in (1, 2, 4, 8)
    ]
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    assert 0 < errors[-1] < errors[0] < 1


def test_each_groups_map_is_largest_where_its_direction_matches_the_photo(lite0, photos, chelsea_groups):
    r = chelsea_groups
    acts = _photo_acts(lite0, photos["chelsea"])  # C×h×w
    assert r.maps.shape == (4, *acts.shape[1:]) and (r.maps >= 0).all()
    cos = F.normalize(acts.flatten(1), dim=0).T @ F.normalize(r.directions, dim=1).T  # positions × k
    for i in range(r.k):
        m = r.maps[i].flatten()
        # where the map is largest, the photo points along this group more than along the others
        top = m.argsort(descending=True)[: max(3, len(m) // 10)]
        assert cos[top, i].mean() > cos[top].mean(0)[torch.arange(r.k) != i].max(), i
        # and the map follows the cosine to its own direction across the whole photo
        assert torch.corrcoef(torch.stack([m, cos[:, i]]))[0, 1] > 0.5, i


def test_group_visualizations_point_along_their_own_direction(lite0, chelsea_groups):
    r = chelsea_groups
    assert r.images.shape == (4, 3, 64, 64)
    scores = direction_scores(lite0, r.images, LAYER, r.directions)
    assert (scores.argmax(1) == torch.arange(r.k)).all(), scores


def test_groups_panel_shows_the_photo_maps_and_pictures(chelsea_groups, tmp_path):
    r = chelsea_groups
    side = r.photo.shape[-1]
    assert r.image.shape == (3, 2 * side + 4, (r.k + 1) * (side + 4) - 4)
    over = r.overlay(0)
    assert over.shape == r.photo.shape
    # the overlay carries group 0's colour most where its map is largest
    m = F.interpolate(r.maps[None, :1], size=(side, side), mode="bilinear")[0, 0]
    colour = r.colour(0).view(3, 1, 1)
    closeness = -(over[0] - colour).abs().sum(0)
    assert closeness[m > m.quantile(0.9)].mean() > closeness[m < m.quantile(0.5)].mean()
    assert r.save(tmp_path / "panel.png").is_file()
    with pytest.raises(fv.FeaturevisError, match="group 4 out of range"):
        r.overlay(4)


def test_activation_grid_cells_point_along_their_own_vector(lite0, photos):
    r = fv.activation_grid(lite0, photos["chelsea"], LAYER, cells=3, size=48, steps=128, progress=False)
    assert (r.rows, r.cols) == (3, 3) and r.images.shape == (9, 3, 48, 48)
    acts = F.adaptive_avg_pool2d(_photo_acts(lite0, photos["chelsea"])[None], (3, 3))[0]
    assert torch.allclose(r.vectors, acts.flatten(1).T, atol=1e-4)
    scores = direction_scores(lite0, r.images, LAYER, r.vectors)
    own = scores.diag()
    assert (scores.argmax(1) == torch.arange(9)).float().mean() >= 7 / 9, scores
    assert (own > (scores.sum(1) - own) / 8).all()
    assert r.image.shape[-2] == 3 * 49 - 1


def test_groups_refuse_bad_counts_and_layers_before_work(lite0, photos):
    with pytest.raises(fv.FeaturevisError, match=r"groups must be 1\.\.112 at _blocks.8"):
        fv.groups(lite0, photos["chelsea"], LAYER, groups=113, progress=False)
    with pytest.raises(fv.FeaturevisError, match="groups must be 1"):
        fv.groups(lite0, photos["chelsea"], LAYER, groups=0, progress=False)
    with pytest.raises(fv.FeaturevisError, match="_fc has no spatial map"):
        fv.groups(lite0, photos["chelsea"], "_fc", progress=False)
    with pytest.raises(fv.FeaturevisError, match="no spatial map"):
        fv.activation_grid(lite0, photos["chelsea"], "logits", progress=False)
    with pytest.raises(fv.FeaturevisError, match="cells must be at least 1"):
        fv.activation_grid(lite0, photos["chelsea"], LAYER, cells=0, progress=False)

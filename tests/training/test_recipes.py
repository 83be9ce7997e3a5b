"""keras_autalk.training.recipes: finding a recipe, its --loss-weight options."""

import pytest

from keras_autalk.errors import AutalkError
from keras_autalk.training.recipes import find_recipe, parse_loss_weights

# --- recipes lookup ---------------------------------------------------------


def test_find_recipe_by_name_path_and_dashes(tmp_path):
    assert find_recipe("talker_demo").name == "talker_demo.py"
    assert find_recipe("talker-tcd-timit").name == "talker_tcd_timit.py"
    script = tmp_path / "mine.py"
    script.write_text("def main(argv):\n    return 0\n")
    assert find_recipe(str(script)) == script
    with pytest.raises(
        AutalkError,
        match="No recipe 'talker_lrs3'; the recipes are: "
        "au_classifier_demo, sync_expert_demo, talker_demo, talker_grid",
    ):
        find_recipe("talker_lrs3")
    with pytest.raises(AutalkError, match="does not exist"):
        find_recipe(str(tmp_path / "missing.py"))


# --- options ----------------------------------------------------------------


def test_loss_weight_options_parse_or_refuse_in_one_sentence():
    assert parse_loss_weights(["mouth_l1=30", "adversarial=0.1"]) == {
        "mouth_l1": 30.0,
        "adversarial": 0.1,
    }
    for bad, message in (
        ["teeth=1", "Unknown loss"],
        ["l1=x", "needs a number"],
        ["l1=-1", "cannot be negative"],
    ):
        with pytest.raises(AutalkError, match=message):
            parse_loss_weights([bad])

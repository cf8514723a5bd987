import pytest
import yaml

from deepmine.params import ParamsError, load_params, parse_params


def test_repository_params_file_is_valid():
    params = load_params("params.yaml")
    assert params.lambda_m == 0.025
    assert params.lambda_theta == 0.1
    assert params.dim_node == 100
    assert params.models["deepmine_image"].view_list == ["image"]


def test_unknown_top_level_key_is_named_with_accepted_keys():
    with pytest.raises(ParamsError) as err:
        parse_params({"lambda_thetaa": 0.05})
    assert "unknown key `lambda_thetaa`" in str(err.value)
    assert "lambda_theta," in str(err.value)


def test_unknown_nested_key_is_named():
    with pytest.raises(ParamsError, match=r"unknown key `train.batchsize` in `train`; accepted keys: epochs"):
        parse_params({"train": {"batchsize": 10}})


@pytest.mark.parametrize("raw, message", [
    ({"lambda_theta": "0.1"}, "`lambda_theta` must be a number, got '0.1'"),
    ({"dim_u": 2.5}, "`dim_u` must be an integer, got 2.5"),
    ({"dim_u": True}, "`dim_u` must be an integer, got True"),
    ({"clean": {"require_image": "yes"}}, "`clean.require_image` must be true or false"),
    ({"evaluate": {"ks": 10}}, "`evaluate.ks` must be a list"),
    ({"lambda_m": -1}, "`lambda_m` must not be negative"),
    ({"models": {"x": {"name": "svd"}}}, "`models.x.name` is 'svd'"),
    ({"models": {"x": {"name": "deepmine", "views": "image,audio"}}}, "unknown view 'audio'"),
    ({"images": {"source": "s3"}}, "`images.source` is 's3'"),
])
def test_wrong_values_are_rejected(raw, message):
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert message in str(err.value)


def test_integer_accepted_for_float_key():
    assert parse_params({"lambda_w": 20}).lambda_w == 20.0


def test_load_params_reports_invalid_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: [1,\n")
    with pytest.raises(ParamsError, match="invalid YAML"):
        load_params(path)
    path.write_text(yaml.safe_dump({"seed": 3}))
    assert load_params(path).seed == 3

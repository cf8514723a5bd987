"""Embed stage: 32-d description and review vectors per item (data/text/features.npz)."""

from deepmine import paths
from deepmine.cli import run_stage
from deepmine.io import write_json
from deepmine.params import load_params
from deepmine.text import EmbeddingCache, build_text_features, load_encoder, read_inputs, write_text_features


def main() -> None:
    params = load_params()
    items, interactions = read_inputs(paths.ITEMS, paths.INTERACTIONS)

    encoder = load_encoder(params.text, params.seed)
    cache = EmbeddingCache(params.text.cache_dir)
    arrays, report = build_text_features(items, interactions, encoder, cache, params.text.dim, params.seed)

    write_text_features(paths.TEXT_FEATURES, arrays)
    write_json(paths.EMBED_REPORT, report)


if __name__ == "__main__":
    run_stage(main)

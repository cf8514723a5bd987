"""images stage: download each item's first image and write the image array, the has-image mask,
the per-item status table and reports/images.json."""

from deepmine import paths
from deepmine.cli import run_stage
from deepmine.images import build_image_set, check_success_share, read_items
from deepmine.io import save_npy, write_json, write_parquet
from deepmine.params import load_params


def main() -> None:
    params = load_params().images
    items = read_items(paths.ITEMS)
    image_set = build_image_set(items, params)

    # The status table and report come first so that a failed check leaves them to inspect.
    write_parquet(paths.IMAGE_STATUS, image_set.status)
    write_json(paths.IMAGES_REPORT, image_set.report)
    check_success_share(image_set.report, params)

    save_npy(paths.IMAGES, image_set.images)
    save_npy(paths.HAS_IMAGE, image_set.has_image)


if __name__ == "__main__":
    run_stage(main)

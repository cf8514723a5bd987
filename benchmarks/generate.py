"""Generate an Amazon Review Data (2018) category at a chosen scale, for the benchmark.

Scale 1.0 matches Prime Pantry: 471,614 review lines, 10,813 metadata lines for 10,812 products
(8,941 of them with a description and an image), 236,741 reviewers, most with one review. The
files follow the 2018 format: reviews as gzip JSON lines with the categoryFiles keys, metadata as
gzip JSON lines with the metaFiles2 keys. Like the real files they contain exact duplicate lines,
empty fields, HTML in descriptions and titles, a few Python-literal metadata lines and a few
truncated lines.

Item popularity is Zipf-like and most products without a description or an image are in the
tail, so cleaning keeps about 95% of the reviews, as it does on the real category. Review and
description lengths are log-normal with medians of 20 and 70 words.

Product images are 100x100 JPEGs under OUT/img/<asin>.jpg, to be served at IMAGE_BASE_URL/img/.
Some image URLs have no file behind them (HTTP 404) and some files are broken (truncated JPEG or
an HTML page). OUT/manifest.json records every count the generator planted.

    python benchmarks/generate.py --scale 1.0 --out DIR --image-base-url http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

log = logging.getLogger(__name__)

# Prime Pantry, Amazon Review Data (2018).
PANTRY_REVIEWS = 471_614
PANTRY_META_ROWS = 10_813
PANTRY_PRODUCTS = 10_812
PANTRY_WITH_DESCRIPTION_AND_IMAGE = 8_941
PANTRY_USERS = 236_741
# The smallest catalogue generated, so that a small scale still has items to rank.
MIN_PRODUCTS = 300

REVIEWS_NAME = "Prime_Pantry.json.gz"
META_NAME = "meta_Prime_Pantry.json.gz"

# Shares of review lines with each defect. The real file has a few hundred exact duplicate lines
# and reviews without text; broken lines stand for a truncated download.
REVIEW_DUPLICATE_SHARE = 0.004
REVIEW_NO_TEXT_SHARE = 0.001
REVIEW_BROKEN_SHARE = 0.0002
# Shares of metadata lines: Python-literal lines (as in the 2014 files), truncated lines and
# titles scraped with their page HTML.
META_PYTHON_LITERAL_SHARE = 0.01
META_BROKEN_SHARE = 0.001
META_HTML_TITLE_SHARE = 0.01
# Shares of products with an image URL whose file is missing (404) or not a valid JPEG.
IMAGE_MISSING_SHARE = 0.02
IMAGE_BROKEN_SHARE = 0.01

STOCK_REVIEWS = ["Great product", "Good", "Love it", "Great", "As described", "Tasty", "Five stars",
                 "good value", "Excellent", "Works great", "Delicious!", "ok"]
FIRST_NAMES = ["Amazon Customer", "Kindle Customer", "Mary", "John", "Linda", "James", "Pat",
               "Chris", "Sam", "Jo", "noname", "A. Smith", "Tamara M.", "Bob K."]
CATEGORIES = [["Prime Pantry", "Food", "Snacks"], ["Prime Pantry", "Household Supplies", "Cleaning"],
              ["Prime Pantry", "Beverages", "Coffee"], ["Prime Pantry", "Beauty & Personal Care"]]
BRANDS = ["Acme", "Pantry Co", "Good Table", "Kitchen Pro", "Fresh Farms", "Brightline"]
SYLLABLES = ["ta", "ro", "mi", "ka", "lo", "ne", "su", "pe", "ri", "do", "va", "chi", "ber", "an",
             "ol", "ex", "tra", "qui", "mon", "zel"]
COMMON_WORDS = ["the", "and", "a", "to", "it", "is", "i", "this", "for", "of", "my", "in", "great",
                "good", "taste", "product", "price", "love", "use", "not", "was", "with", "but",
                "very", "flavor", "box", "buy", "will", "again", "like"]


def counts_for_scale(scale: float) -> dict[str, int]:
    """Sizes of the generated category; at least MIN_PRODUCTS products and 2 lines of reviews per product."""
    products = max(MIN_PRODUCTS, round(PANTRY_PRODUCTS * scale))
    reviews = max(2 * products, round(PANTRY_REVIEWS * scale))
    users = max(1, round(reviews * PANTRY_USERS / PANTRY_REVIEWS))
    complete = round(products * PANTRY_WITH_DESCRIPTION_AND_IMAGE / PANTRY_PRODUCTS)
    duplicates = max(1, round((PANTRY_META_ROWS - PANTRY_PRODUCTS) * scale))
    return {"reviews": reviews, "products": products, "users": users,
            "products_with_description_and_image": complete, "meta_duplicate_rows": duplicates}


def user_activity(n_users: int, n_reviews: int, rng: np.random.Generator) -> np.ndarray:
    """Reviews per user: power-law counts, at least 1 each, summing exactly to n_reviews.

    An exponent of 2.6 gives about half the users one review and a tail of a few hundred, close
    to the real category where 236,741 reviewers wrote 471,614 reviews.
    """
    counts = np.minimum(rng.zipf(2.6, n_users), 1000).astype(np.int64)
    # Move the total to n_reviews one review at a time on random users, never below 1.
    diff = n_reviews - int(counts.sum())
    while diff != 0:
        picks = rng.integers(0, n_users, abs(diff))
        if diff > 0:
            np.add.at(counts, picks, 1)
        else:
            picks = picks[counts[picks] > 1]
            picks = np.unique(picks)[: -diff]
            counts[picks] -= 1
        diff = n_reviews - int(counts.sum())
    return counts


def make_vocabulary(rng: np.random.Generator, size: int = 6000) -> np.ndarray:
    parts = rng.integers(0, len(SYLLABLES), (size, 3))
    lengths = rng.integers(1, 4, size)
    made = ["".join(SYLLABLES[p] for p in row[:n]) for row, n in zip(parts, lengths)]
    return np.array(COMMON_WORDS + made, dtype=object)


class Corpus:
    """One long text of Zipf-distributed words; texts are slices of it at word boundaries."""

    def __init__(self, rng: np.random.Generator, n_words: int = 2_000_000):
        vocabulary = make_vocabulary(rng)
        ranks = (rng.zipf(1.3, n_words) - 1) % len(vocabulary)
        words = vocabulary[ranks]
        # Sentences of about 12 words.
        ends = rng.random(n_words) < 1 / 12
        words = np.where(ends, words + ".", words)
        self.text = " ".join(words.tolist())
        lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=n_words)
        self.starts = np.concatenate([[0], np.cumsum(lengths + 1)])
        self.n_words = n_words

    def texts(self, word_counts: np.ndarray, rng: np.random.Generator) -> list[str]:
        word_counts = np.minimum(word_counts, self.n_words // 2)
        first = rng.integers(0, self.n_words - word_counts)
        begin = self.starts[first]
        end = self.starts[first + word_counts] - 1
        text = self.text
        return [text[b:e].capitalize() for b, e in zip(begin.tolist(), end.tolist())]


def lognormal_words(rng: np.random.Generator, n: int, median: float, sigma: float, cap: int) -> np.ndarray:
    return np.clip(np.rint(rng.lognormal(np.log(median), sigma, n)), 1, cap).astype(np.int64)


def make_asins(n: int, rng: np.random.Generator) -> list[str]:
    # Sorted, distinct, ASIN-shaped; the real reviews file is ordered by ASIN.
    codes = np.sort(rng.choice(36 ** 6, size=n, replace=False))
    return [f"B00{np.base_repr(int(c), 36).rjust(6, '0')}X" for c in codes]


def make_reviewer_ids(n: int, rng: np.random.Generator) -> list[str]:
    suffix = rng.integers(0, 36 ** 5, n)
    return [f"A{np.base_repr(i, 36).rjust(5, '0')}{np.base_repr(int(s), 36).rjust(5, '0')}"
            for i, s in enumerate(suffix.tolist())]


def review_time_strings(unix: np.ndarray) -> list[str]:
    days = unix.astype("datetime64[s]").astype("datetime64[D]")
    years = days.astype("datetime64[Y]").astype(int) + 1970
    months = days.astype("datetime64[M]").astype(int) % 12 + 1
    day = (days - days.astype("datetime64[M]")).astype(int) + 1
    return [f"{m:02d} {d}, {y}" for m, d, y in zip(months.tolist(), day.tolist(), years.tolist())]


def write_reviews(path: Path, asins: list[str], popularity: np.ndarray, n_users: int, n_reviews: int,
                  corpus: Corpus, base_url: str, rng: np.random.Generator) -> dict[str, int]:
    """Write the reviews file; return the planted counts."""
    n_duplicates = round(n_reviews * REVIEW_DUPLICATE_SHARE)
    n_broken = round(n_reviews * REVIEW_BROKEN_SHARE)
    n_rows = n_reviews - n_duplicates - n_broken

    per_user = user_activity(n_users, n_rows, rng)
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.choice(len(asins), size=n_rows, p=popularity)
    # Review times between 2010 and late 2018, more of them in later years.
    start, end = 1_262_304_000, 1_538_352_000
    unix = (start + (end - start) * rng.beta(3.0, 1.5, n_rows)).astype(np.int64) // 86400 * 86400
    order = np.lexsort((unix, items))
    users, items, unix = users[order], items[order], unix[order]

    reviewer_ids = make_reviewer_ids(n_users, rng)
    texts = corpus.texts(lognormal_words(rng, n_rows, 20, 1.0, 1500), rng)
    stock = rng.random(n_rows) < 0.03
    for i in np.flatnonzero(stock).tolist():
        texts[i] = STOCK_REVIEWS[i % len(STOCK_REVIEWS)]
    summaries = corpus.texts(lognormal_words(rng, n_rows, 3, 0.6, 30), rng)
    overall = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], size=n_rows, p=[0.08, 0.04, 0.08, 0.15, 0.65])
    verified = rng.random(n_rows) < 0.9
    votes = np.minimum(rng.zipf(1.8, n_rows), 5000)
    has_vote = rng.random(n_rows) < 0.13
    no_text = rng.random(n_rows) < REVIEW_NO_TEXT_SHARE
    empty_text = no_text & (rng.random(n_rows) < 0.5)
    no_summary = rng.random(n_rows) < 0.002
    with_image = rng.random(n_rows) < 0.005
    with_style = rng.random(n_rows) < 0.02
    names = rng.integers(0, len(FIRST_NAMES), n_rows)
    times = review_time_strings(unix)

    lines = []
    for i in tqdm(range(n_rows), desc="reviews", unit="row", mininterval=2, disable=n_rows < 50_000):
        row = {"overall": float(overall[i])}
        if has_vote[i]:
            row["vote"] = f"{int(votes[i]):,}"
        row["verified"] = bool(verified[i])
        row["reviewTime"] = times[i]
        row["reviewerID"] = reviewer_ids[users[i]]
        row["asin"] = asins[items[i]]
        if with_style[i]:
            row["style"] = {"Size:": f" {int(votes[i]) % 32 + 1} Ounce (Pack of {int(votes[i]) % 6 + 1})"}
        row["reviewerName"] = FIRST_NAMES[names[i]]
        if not no_text[i]:
            row["reviewText"] = texts[i]
        elif empty_text[i]:
            row["reviewText"] = ""
        if not no_summary[i]:
            row["summary"] = summaries[i]
        row["unixReviewTime"] = int(unix[i])
        if with_image[i]:
            row["image"] = [f"{base_url}/review-img/{i}.jpg"]
        lines.append(json.dumps(row))

    # Exact duplicates right after their original, as in the real file; broken lines anywhere.
    copy_of = np.sort(rng.choice(n_rows, size=n_duplicates, replace=False))
    broken_at = np.sort(rng.choice(n_rows, size=n_broken, replace=False))
    is_copy = np.zeros(n_rows, dtype=np.int64)
    np.add.at(is_copy, copy_of, 1)
    is_broken = np.zeros(n_rows, dtype=bool)
    is_broken[broken_at] = True
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as f:
        chunk = []
        for i, line in enumerate(lines):
            chunk.append(line)
            if is_copy[i]:
                chunk.append(line)
            if is_broken[i]:
                chunk.append(line[: len(line) // 2])
            if len(chunk) >= 20_000:
                f.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            f.write("\n".join(chunk) + "\n")

    return {
        "review_lines": n_rows + n_duplicates + n_broken,
        "review_rows": n_rows,
        "review_exact_duplicate_lines": n_duplicates,
        "review_broken_lines": n_broken,
        "review_rows_without_text_key": int((no_text & ~empty_text).sum()),
        "review_rows_with_empty_text": int(empty_text.sum()),
        "reviewers": int(len(np.unique(users))),
        "reviewers_with_one_review": int((per_user == 1).sum()),
        "user_item_pairs": int(len(np.unique(users.astype(np.int64) * len(asins) + items))),
    }


def description_html(words: str, style: int) -> list[str]:
    if style == 0:
        return [words]
    if style == 1:
        return [f"<b>{words[:40]}</b><br>{words[40:]}"]
    if style == 2:
        half = len(words) // 2
        return [f"<p>{words[:half]} &amp; more</p>", f"<ul><li>{words[half:]}</li></ul>"]
    return [f"{words} <br/><br/> Ingredients: water, salt &amp; sugar."]


def write_products(path: Path, asins: list[str], has_description: np.ndarray, has_image: np.ndarray,
                   n_duplicates: int, corpus: Corpus, base_url: str,
                   rng: np.random.Generator) -> tuple[dict[str, int], list[str]]:
    """Write the metadata file; return the planted counts and the ASINs whose first image URL is served."""
    n = len(asins)
    descriptions = corpus.texts(lognormal_words(rng, n, 70, 0.8, 1500), rng)
    titles = corpus.texts(lognormal_words(rng, n, 8, 0.4, 40), rng)
    html_title = rng.random(n) < META_HTML_TITLE_SHARE
    description_style = rng.integers(0, 4, n)
    image_count = rng.integers(1, 8, n)
    python_literal = rng.random(n) < META_PYTHON_LITERAL_SHARE
    prices = rng.lognormal(np.log(6.0), 0.6, n)
    has_price = rng.random(n) < 0.7

    lines = []
    for j in range(n):
        title = titles[j]
        if html_title[j]:
            title = f'<span id="productTitle" class="a-size-large">{title}</span>\n var aPageStart = (new Date()).getTime();'
        high = [f"{base_url}/img/{asins[j]}.jpg"] + [f"{base_url}/img/{asins[j]}_{k}.jpg" for k in range(1, image_count[j])]
        small = [f"{base_url}/img/{asins[j]}.jpg"] + [f"{base_url}/img/{asins[j]}_{k}_SS40.jpg" for k in range(1, image_count[j])]
        row = {
            "category": CATEGORIES[j % len(CATEGORIES)],
            "tech1": "",
            "description": description_html(descriptions[j], int(description_style[j])) if has_description[j] else [],
            "fit": "",
            "title": title,
            "also_buy": [asins[(j + k * 7) % n] for k in range(1, j % 5)],
            "tech2": "",
            "brand": BRANDS[j % len(BRANDS)],
            "feature": [],
            "rank": f"{(j * 37) % 90000 + 1:,} in Grocery & Gourmet Food (",
            "also_view": [asins[(j + k * 3) % n] for k in range(1, j % 4)],
            "details": {"\n    Product Dimensions: \n    ": "5 x 3 x 2 inches", "ASIN: ": asins[j]},
            "main_cat": "Grocery",
            "similar_item": "",
            "date": "",
            "price": f"${prices[j]:.2f}" if has_price[j] else "",
            "asin": asins[j],
            "imageURL": small if has_image[j] else [],
            "imageURLHighRes": high if has_image[j] else [],
        }
        lines.append(repr(row) if python_literal[j] else json.dumps(row))

    n_broken = max(1, round(n * META_BROKEN_SHARE))
    broken = rng.choice(n, size=n_broken, replace=False)
    out = list(lines)
    for j in broken.tolist():
        out[j] = lines[j][: len(lines[j]) // 3]
    duplicated = rng.choice(np.setdiff1d(np.arange(n), broken), size=n_duplicates, replace=False)
    for j in np.sort(duplicated)[::-1].tolist():
        out.insert(j + 1, lines[j])
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as f:
        f.write("\n".join(out) + "\n")

    readable = np.ones(n, dtype=bool)
    readable[broken] = False
    counts = {
        "meta_lines": len(out),
        "meta_products": n,
        "meta_exact_duplicate_lines": n_duplicates,
        "meta_broken_lines": n_broken,
        "meta_python_literal_lines": int(python_literal.sum() + python_literal[duplicated].sum()),
        "meta_html_titles": int(html_title.sum()),
        "products_with_description": int(has_description.sum()),
        "products_with_image_url": int(has_image.sum()),
        "products_with_description_and_image": int((has_description & has_image).sum()),
        "readable_products_with_description_and_image": int((has_description & has_image & readable).sum()),
    }
    return counts, [asins[j] for j in np.flatnonzero(has_image).tolist()]


def write_images(folder: Path, asins: list[str], rng: np.random.Generator) -> dict[str, int]:
    """Write <asin>.jpg for the items with image URLs; leave some out and break some."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(asins)
    fate = rng.random(n)
    missing = fate < IMAGE_MISSING_SHARE
    broken = (fate >= IMAGE_MISSING_SHARE) & (fate < IMAGE_MISSING_SHARE + IMAGE_BROKEN_SHARE)
    colours = rng.integers(0, 256, (n, 2, 3))
    ramp = np.linspace(0.0, 1.0, 100, dtype=np.float32)[None, :, None]
    for j in tqdm(range(n), desc="images", unit="jpeg", mininterval=2, disable=n < 2000):
        if missing[j]:
            continue
        if broken[j] and j % 2:
            (folder / f"{asins[j]}.jpg").write_bytes(b"<html><body>Image not available</body></html>")
            continue
        # A horizontal gradient between two colours with a diagonal stripe: a few KB as JPEG.
        a, b = colours[j].astype(np.float32)
        pixels = np.broadcast_to(a + (b - a) * ramp, (100, 100, 3)).copy()
        pixels[np.arange(100), np.arange(100)] = 255 - a
        buffer = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8), "RGB").save(buffer, format="JPEG", quality=80)
        body = buffer.getvalue()
        if broken[j]:
            body = body[: len(body) // 3]
        (folder / f"{asins[j]}.jpg").write_bytes(body)
    return {"image_files_ok": int((~missing & ~broken).sum()), "image_files_missing": int(missing.sum()),
            "image_files_broken": int(broken.sum())}


def generate(out: str | Path, scale: float = 1.0, seed: int = 0,
             image_base_url: str = "http://127.0.0.1:8000") -> dict:
    """Write the reviews, metadata and images of a generated category to `out`; return the manifest.

    The manifest (also written to out/manifest.json) has the file paths and every planted count.
    """
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base_url = image_base_url.rstrip("/")
    rng = np.random.default_rng(seed)
    sizes = counts_for_scale(scale)
    n_products = sizes["products"]

    asins = make_asins(n_products, rng)
    # Zipf-like popularity over a random ranking of the products.
    rank = rng.permutation(n_products)
    popularity = 1.0 / (rank + 5.0) ** 1.05
    popularity /= popularity.sum()

    # Products without a description or an image come mostly from the tail: the ones missing
    # something are drawn from the 40% least popular, weighted towards the least popular.
    n_incomplete = n_products - sizes["products_with_description_and_image"]
    tail = np.argsort(-popularity)[int(n_products * 0.6):]
    incomplete = rng.choice(tail, size=min(n_incomplete, len(tail)), replace=False)
    lacks = rng.random(len(incomplete))
    has_description = np.ones(n_products, dtype=bool)
    has_image = np.ones(n_products, dtype=bool)
    has_description[incomplete[lacks < 0.7]] = False
    has_image[incomplete[lacks >= 0.6]] = False

    corpus = Corpus(rng)
    paths = {"reviews": out / REVIEWS_NAME, "meta": out / META_NAME, "images": out / "img"}
    log.info("writing %d review lines for %d products", sizes["reviews"], n_products)
    review_counts = write_reviews(paths["reviews"], asins, popularity, sizes["users"], sizes["reviews"],
                                  corpus, base_url, rng)
    meta_counts, served = write_products(paths["meta"], asins, has_description, has_image,
                                         sizes["meta_duplicate_rows"], corpus, base_url, rng)
    image_counts = write_images(paths["images"], served, rng)

    manifest = {
        "scale": scale,
        "seed": seed,
        "image_base_url": base_url,
        "files": {k: str(v) for k, v in paths.items()},
        "counts": {**review_counts, **meta_counts, **image_counts},
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log.info("generated in %.1f s: %s", manifest["seconds"], manifest["counts"])
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="size relative to Prime Pantry (1.0: 471,614 review lines)")
    parser.add_argument("--out", required=True, help="folder for the reviews, metadata, img/ and manifest.json")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same files")
    parser.add_argument("--image-base-url", default="http://127.0.0.1:8000",
                        help="URL prefix of the image server that serves OUT/img/ as /img/")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error(f"--scale must be positive, got {args.scale}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    generate(args.out, args.scale, args.seed, args.image_base_url)


if __name__ == "__main__":
    main()

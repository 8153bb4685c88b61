"""Our TF-IDF runbook search against scikit-learn's TfidfVectorizer on the shipped runbooks and realistic queries."""
import numpy as np
import pytest

from aiops.testing.runbook_queries import runbook_queries
from aiops.triage.enrich import DEFAULT_RUNBOOKS_DIR, RunbookIndex, runbook_document
from aiops.triage.tfidf import STOP_WORDS, TfidfIndex, terms

sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")  # in the dev install

RUNBOOKS = RunbookIndex.from_folder(DEFAULT_RUNBOOKS_DIR)
DOCUMENTS = [runbook_document(r) for r in RUNBOOKS.runbooks]
QUERIES = runbook_queries()


def sklearn_scores(stop_words="english"):
    vectorizer = sklearn_text.TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), stop_words=stop_words)
    matrix = vectorizer.fit_transform(DOCUMENTS)
    return lambda query: (matrix @ vectorizer.transform([query]).T).toarray().ravel()


def top(scores, k, min_score=0.05):
    """As RunbookIndex.search ranks: by score, ties in folder order, below min_score dropped."""
    return [i for i in sorted(range(len(scores)), key=lambda i: -scores[i]) if scores[i] >= min_score][:k]


def test_terms_drop_stop_words_before_bigrams():
    assert terms("The pod is DOWN, and it crash-loops") == ["pod", "down", "crash", "loops", "pod down", "down crash",
                                                            "crash loops"]
    assert "above" in STOP_WORDS and "down" not in STOP_WORDS and "out" not in STOP_WORDS


def test_same_weighting_as_sklearn_given_the_same_stop_words():
    stop_words = frozenset(sklearn_text.ENGLISH_STOP_WORDS)
    ours, theirs = TfidfIndex(DOCUMENTS, stop_words), sklearn_scores(sorted(stop_words))
    for _label, query in QUERIES:
        np.testing.assert_allclose(ours.scores(query), theirs(query), atol=1e-12)


def test_our_stop_words_rank_like_sklearn_on_realistic_queries():
    theirs = sklearn_scores()
    assert len(QUERIES) > 150 and len(DOCUMENTS) == 8
    found = 0
    for label, query in QUERIES:
        a = RUNBOOKS._index.scores(query)
        b = theirs(query)
        assert top(a, 1) == top(b, 1), f"{label}: top runbook differs: {top(a, 3)} vs sklearn {top(b, 3)}"
        assert np.abs(a - b).max() < 0.03, f"{label}: scores differ: {a.round(3)} vs sklearn {b.round(3)}"
        found += bool(top(a, 1))
    assert found > 150  # most queries find a runbook; the rest find none on both sides
    readme_groups = {RUNBOOKS.search(q)[0]["path"] for label, q in QUERIES if label.startswith("README group")}
    assert readme_groups == {"oomkilled-crashloop.md", "tls-certificate-expiry.md"}


def test_empty_index_and_unknown_words():
    assert RunbookIndex([]).search("anything") == []
    assert RUNBOOKS.search("zzzz qqqq") == [] and RUNBOOKS.search("   ") == []
    assert TfidfIndex(["only stop words: the and of"]).scores("the").tolist() == [0.0]

"""TF-IDF retrieval over numpy, for the runbook search: no scikit-learn needed.

The weighting is scikit-learn's ``TfidfVectorizer(sublinear_tf=True,
ngram_range=(1, 2), stop_words=...)`` with its defaults: lower-cased words of
two or more word characters, stop words dropped before the bigrams are
formed, term frequency ``1 + ln(count)``, smooth idf
``ln((1 + n_docs) / (1 + doc_freq)) + 1``, every row scaled to unit length,
so a dot product is the cosine similarity. The stop-word list is our own
(``STOP_WORDS``): English function words, plus ``above`` and ``below``, which
every threshold alert says ("p99 above SLO") and so tell runbooks apart by
noise only; words that carry meaning in an alert (``down``, ``back``,
``off``, ``out``, ``full``, ``empty``, ``over``, ``under``) stay searchable.

The index is inverted (one array of documents and weights per term), so a
query costs O(documents holding its terms), however large the vocabulary.
"""
from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

#: Words dropped before counting: articles, pronouns, auxiliaries, conjunctions, prepositions and
#: filler adverbs, and the threshold words above/below (one-letter words never count: a term has at least
#: two word characters).
STOP_WORDS = frozenset("""
    about above after again against ago all almost along already also although always am among amongst an and another
    any anybody anyhow anyone anything anyway anywhere are aren around as at be became because become becomes been
    before being below besides between beyond both but by can cannot could couldn did didn do does doesn doing don done
    during each either else elsewhere enough etc even ever every everybody everyone everything everywhere few for
    from further furthermore had hadn has hasn have haven having he hence her here hereby herein hers herself him
    himself his how however if in indeed into is isn it its itself just least less let lets like likely ll may
    maybe me meanwhile might mine more moreover most mostly much must my myself namely neither never nevertheless
    no nobody none nor not nothing now of often on once only onto or other others otherwise ought our ours
    ourselves own perhaps quite rather re really said same say says seem seemed seems several shall she should
    shouldn since so some somebody somehow someone something sometimes somewhat somewhere still such than that the
    their theirs them themselves then thence there thereafter thereby therefore these they this those though
    through throughout thus to together too toward towards unless unlike until upon us ve very via was wasn we well
    were weren what whatever when whenever where whereas wherever whether which while who whoever whole whom whose
    why will with within without won would wouldn yet you your yours yourself yourselves
""".split())

_WORD = re.compile(r"(?u)\b\w\w+\b")


def terms(text: str, stop_words: frozenset[str] = STOP_WORDS) -> list[str]:
    """The unigrams and bigrams of ``text``, stop words removed first (``"the pod is down"`` ->
    ``["pod", "down", "pod down"]``)."""
    words = [w for w in _WORD.findall(text.lower()) if w not in stop_words]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


class TfidfIndex:
    """Documents ranked by the cosine similarity of their TF-IDF vectors to a query's."""

    def __init__(self, documents: list[str], stop_words: frozenset[str] = STOP_WORDS):
        self.stop_words = stop_words
        self.n_documents = len(documents)
        counts = [Counter(terms(doc, stop_words)) for doc in documents]
        doc_freq = Counter(term for c in counts for term in c)
        self.vocabulary = {term: i for i, term in enumerate(sorted(doc_freq))}
        df = np.array([doc_freq[t] for t in sorted(doc_freq)], dtype=float)
        self.idf = np.log((1.0 + self.n_documents) / (1.0 + df)) + 1.0
        postings: dict[int, tuple[list[int], list[float]]] = {}
        for doc, c in enumerate(counts):
            ids, weights = self._weights(c)
            for term_id, weight in zip(ids, weights):
                entry = postings.setdefault(int(term_id), ([], []))
                entry[0].append(doc)
                entry[1].append(float(weight))
        #: term id -> (documents holding it, their normalised weights)
        self._postings = {t: (np.array(d, dtype=np.intp), np.array(w)) for t, (d, w) in postings.items()}

    def _weights(self, counts: Counter) -> tuple[np.ndarray, np.ndarray]:
        """Known term ids of ``counts`` and their unit-length sublinear TF-IDF weights."""
        known = [(self.vocabulary[t], n) for t, n in counts.items() if t in self.vocabulary]
        if not known:
            return np.empty(0, dtype=np.intp), np.empty(0)
        ids = np.array([i for i, _ in known], dtype=np.intp)
        weights = np.array([1.0 + math.log(n) for _, n in known]) * self.idf[ids]
        return ids, weights / np.linalg.norm(weights)

    def scores(self, query: str) -> np.ndarray:
        """Cosine similarity of every document to ``query`` (0 for a query with no known term)."""
        out = np.zeros(self.n_documents)
        for term_id, weight in zip(*self._weights(Counter(terms(query, self.stop_words)))):
            docs, doc_weights = self._postings[int(term_id)]
            out[docs] += weight * doc_weights
        return out

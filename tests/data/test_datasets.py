import pytest

from dfkd.data import load_dataset, size_stats, split_indices, stratified_kfold, stratified_split


def test_bundled_mutag(mutag):
    assert len(mutag) == 188 and mutag.num_classes == 2 and mutag.num_features == 7
    assert mutag.feature_spec.encoding == "one_hot"
    assert mutag.label_mapping == {str(v): i for i, v in enumerate(mutag.label_values)}
    labels = mutag.labels
    assert labels.count(1) == 125 and labels.count(0) == 63


def test_bundled_ptc_and_alias():
    ptc = load_dataset("PTC_MR")
    assert len(ptc) == 344 and ptc.num_features == 19


def test_standard_folds_partition_the_dataset(mutag):
    seen = []
    for k in range(1, 11):
        train, test = mutag.fold(k)
        assert not set(train) & set(test)
        assert len(train) + len(test) == len(mutag)
        seen += test
    # The standard GIN splits use 10 equal test folds: 180 distinct test graphs, the remainder always trains.
    assert len(seen) == len(set(seen)) == 180
    with pytest.raises(ValueError, match="1..10"):
        mutag.fold(11)


def test_stratified_split_is_seeded_and_stratified():
    labels = [0] * 60 + [1] * 40
    a = stratified_split(labels, 0.3, seed=1)
    assert a == stratified_split(labels, 0.3, seed=1)
    assert a != stratified_split(labels, 0.3, seed=2)
    train, test = a
    assert sorted(train + test) == list(range(100))
    assert sum(labels[i] for i in test) == 12 and len(test) == 30


def test_kfold_covers_everything_once():
    labels = [0] * 23 + [1] * 17
    folds = stratified_kfold(labels, 5, seed=0)
    tests = sorted(i for _, t in folds for i in t)
    assert tests == list(range(40))
    assert all(abs(len(t) - 8) <= 1 for _, t in folds)


def test_split_indices_records_choice(mutag):
    train, test, record = split_indices(mutag, holdout=0.3, seed=3)
    assert record == {"kind": "holdout", "ratio": 0.3, "seed": 3}
    assert len(test) == round(63 * 0.3) + round(125 * 0.3)
    _, _, record = split_indices(mutag)
    assert record == {"kind": "fold", "fold": 1}
    with pytest.raises(ValueError, match="not both"):
        split_indices(mutag, fold=2, holdout=0.3)


def test_size_stats(mutag):
    stats = size_stats(list(mutag))
    assert stats.min_nodes == 10 and stats.max_nodes == 28
    assert 17 < stats.mean_nodes < 18.5 and 2.0 < stats.mean_degree < 2.5
    # Molecules are far more regular than Erdős–Rényi graphs (dispersion 1).
    assert 0.15 < stats.degree_dispersion < 0.4


def test_size_stats_type_frequencies_by_hand(mutag):
    from torch_geometric.data import Data
    import torch

    ei = torch.tensor([[0, 1], [1, 0]])
    a = Data(x=torch.tensor([[1.0, 0, 0], [0, 0, 1]]), edge_index=ei, num_nodes=2)
    b = Data(x=torch.tensor([[1.0, 0, 0], [1, 0, 0]]), edge_index=ei, num_nodes=2)
    assert size_stats([a, b]).type_frequencies == [0.75, 0.0, 0.25]
    # Not one-hot (continuous features, or no features): nothing to count.
    assert size_stats([a, Data(x=torch.tensor([[0.5, 0.5, 0], [1, 0, 0]]), edge_index=ei)]).type_frequencies is None
    assert size_stats([Data(edge_index=ei, num_nodes=2)]).type_frequencies is None
    shares = size_stats(list(mutag)).type_frequencies
    assert len(shares) == 7 and abs(sum(shares) - 1) < 1e-3 and max(shares) > 0.7  # mostly carbon


def test_size_stats_degree_moments_by_hand():
    from torch_geometric.data import Data
    import torch

    path = Data(edge_index=torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]]), num_nodes=4)  # degrees 1 2 2 1
    star = Data(edge_index=torch.tensor([[0, 0, 1, 2], [1, 2, 0, 0]]), num_nodes=3)  # degrees 2 1 1
    stats = size_stats([path, star])
    degrees = torch.tensor([1.0, 2, 2, 1, 2, 1, 1])
    assert stats.mean_degree == pytest.approx(float(degrees.mean()), abs=1e-3)
    assert stats.degree_var == pytest.approx(float(degrees.var(unbiased=False)), abs=1e-3)
    assert stats.degree_dispersion == pytest.approx(stats.degree_var / stats.mean_degree)

"""The circular-dependency check on plain graphs: no database needed."""

import pytest

from breakglass.core.depgraph import dependency_chain, service_cycles


def test_a_path_with_no_requirements_is_sound():
    assert dependency_chain(protected="sso", requires=[], graph={"sso": ["dns"]}) is None


def test_a_path_requiring_the_protected_service_itself_is_flagged():
    assert dependency_chain(protected="sso", requires=["sso"], graph={}) == ["sso", "sso"]


def test_a_two_step_cycle_names_the_middle_service():
    graph = {"vpn": ["sso"], "sso": ["dns"]}
    assert dependency_chain(protected="sso", requires=["vpn"], graph=graph) == ["sso", "vpn", "sso"]


@pytest.mark.parametrize("length", [1, 2, 3, 4])
def test_cycles_of_several_lengths_are_found_with_their_full_chain(length):
    # sso <- s1 <- s2 ... : the path requires the last link, which leads back to sso.
    links = [f"s{i}" for i in range(1, length)]
    graph = {"sso": []}
    previous = "sso"
    for link in links:
        graph[link] = [previous]
        previous = link
    requires = [links[-1]] if links else ["sso"]
    chain = dependency_chain(protected="sso", requires=requires, graph=graph)
    assert chain == ["sso", *reversed(links), "sso"]
    assert len(chain) == length + 1


def test_a_path_needing_something_that_depends_on_the_service_is_flagged():
    graph = {"chat": ["sso"], "sso": []}
    assert dependency_chain(protected="sso", requires=["chat"], graph=graph) == [
        "sso",
        "chat",
        "sso",
    ]


def test_the_shortest_chain_is_reported_when_there_are_several():
    graph = {"a": ["b"], "b": ["c"], "c": ["sso"], "d": ["sso"]}
    assert dependency_chain(protected="sso", requires=["a", "d"], graph=graph) == [
        "sso",
        "d",
        "sso",
    ]


def test_a_diamond_without_the_protected_service_is_sound():
    graph = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}
    assert dependency_chain(protected="sso", requires=["a"], graph=graph) is None


def test_a_diamond_leading_to_the_protected_service_is_flagged_once():
    graph = {"a": ["b", "c"], "b": ["sso"], "c": ["sso"]}
    assert dependency_chain(protected="sso", requires=["a"], graph=graph) == [
        "sso",
        "a",
        "b",
        "sso",
    ]


def test_unrelated_cycles_do_not_loop_or_flag():
    graph = {"a": ["b"], "b": ["a"], "x": ["x"]}
    assert dependency_chain(protected="sso", requires=["a", "x"], graph=graph) is None


def test_self_loops_are_reported_as_service_cycles():
    assert service_cycles({"x": ["x"], "y": ["z"], "z": []}) == [["x", "x"]]


def test_longer_service_cycles_are_reported_from_each_member():
    graph = {"a": ["b"], "b": ["c"], "c": ["a"]}
    assert service_cycles(graph) == [
        ["a", "b", "c", "a"],
        ["b", "c", "a", "b"],
        ["c", "a", "b", "c"],
    ]

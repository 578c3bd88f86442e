"""Node expansion: names, counts, per-node overrides, placeholders in templates."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from stem_systemd import placeholders
from stem_systemd.config import Settings
from stem_systemd.errors import UsageError
from stem_systemd.nodes import NodeSpec, expand, node_spec

BASE = Settings(
    command=("/opt/stem/bin/stem-worker",),
    nodes=(),
    pidfile="/run/stem/%n.pid",
    logfile="/var/log/stem/%n%I.log",
    start_timeout=30.0,
    stop_timeout=30.0,
    ready_after=None,
    backend="pidfile",
    workdir=None,
    env_file=None,
    piddir=Path("/run/stem"),
    logdir=Path("/var/log/stem"),
)


def run(args: str | list[str], passthrough: tuple[str, ...] = (), **changes: Any) -> list[NodeSpec]:
    settings = dataclasses.replace(BASE, **changes)
    tokens = args.split() if isinstance(args, str) else args
    return expand(tokens, passthrough, settings, "box")


def table(specs: list[NodeSpec]) -> dict[str, tuple[str, ...]]:
    return {spec.name: spec.args for spec in specs}


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ("alpha", ["alpha"]),
        ("alpha beta gamma", ["alpha", "beta", "gamma"]),
        ("3", ["w1", "w2", "w3"]),
        ("1", ["w1"]),
        ("beta alpha", ["beta", "alpha"]),
        ("eu-west w1@host köln", ["eu-west", "w1@host", "köln"]),
        ("alpha -c 2", ["alpha"]),
    ],
)
def test_names_and_counts(args: str, names: list[str]) -> None:
    """Names are taken as given, in order; a lone number N makes nodes w1..wN."""
    assert [spec.name for spec in run(args)] == names


def test_name_with_space() -> None:
    """A node name with a space is one node (the shell already split the words)."""
    assert [s.name for s in run(["my worker", "alpha"])] == ["my worker", "alpha"]


def test_indexes_are_one_based_in_order() -> None:
    """Each node's index is its 1-based position."""
    assert [(s.name, s.index) for s in run("a b c")] == [("a", 1), ("b", 2), ("c", 3)]


@pytest.mark.parametrize(
    ("nodes", "names"),
    [
        (("alpha", "beta"), ["alpha", "beta"]),
        (("2",), ["w1", "w2"]),
        (("my worker", "x"), ["my worker", "x"]),
    ],
)
def test_stem_worker_nodes_when_none_given(nodes: tuple[str, ...], names: list[str]) -> None:
    """With no names on the command line, STEM_WORKER_NODES's words are the nodes."""
    assert [s.name for s in run("-c 2", nodes=nodes)] == names


def test_names_given_beat_stem_worker_nodes() -> None:
    """Names on the command line replace STEM_WORKER_NODES entirely."""
    assert [s.name for s in run("gamma", nodes=("alpha", "beta"))] == ["gamma"]


def test_no_nodes_is_a_usage_error() -> None:
    """No names and no STEM_WORKER_NODES is a usage error with a hint."""
    with pytest.raises(UsageError) as exc:
        run("-c 2")
    assert "no nodes" in exc.value.message
    assert exc.value.hint and "STEM_WORKER_NODES" in exc.value.hint


def test_no_nodes_allowed_when_asked() -> None:
    """allow_empty turns 'no nodes' into an empty list (status listing what exists)."""
    assert expand([], [], BASE, "box", allow_empty=True) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # plain options go to every node, in the order given
        (
            "a b -c 4 --loglevel=INFO",
            {"a": ("-c", "4", "--loglevel=INFO"), "b": ("-c", "4", "--loglevel=INFO")},
        ),
        # a flag without a value
        (
            "a b --without-gossip -c 2",
            {"a": ("--without-gossip", "-c", "2"), "b": ("--without-gossip", "-c", "2")},
        ),
        # long option with separate value keeps two tokens
        ("a --loglevel INFO", {"a": ("--loglevel", "INFO")}),
        # index selector
        ("a b c -c:2 8", {"a": (), "b": ("-c", "8"), "c": ()}),
        # range selector
        ("a b c -c:1-2 8", {"a": ("-c", "8"), "b": ("-c", "8"), "c": ()}),
        # name selector
        ("alpha beta -Q:alpha images", {"alpha": ("-Q", "images"), "beta": ()}),
        # comma list mixing index and name
        ("a b c -Q:1,c q", {"a": ("-Q", "q"), "b": (), "c": ("-Q", "q")}),
        # long form with selector
        ("a b --queues:b=fast", {"a": (), "b": ("--queues=fast",)}),
        ("a b --queues:b fast", {"a": (), "b": ("--queues", "fast")}),
        # selector override beats the plain value, whichever comes first
        ("a b -c 2 -c:1 8", {"a": ("-c", "8"), "b": ("-c", "2")}),
        ("a b -c:1 8 -c 2", {"a": ("-c", "8"), "b": ("-c", "2")}),
        # among plain values the later wins
        ("a b -c 2 -c 3", {"a": ("-c", "3"), "b": ("-c", "3")}),
        # among overrides matching a node the later wins
        ("a b c -c:1-3 4 -c:2 9", {"a": ("-c", "4"), "b": ("-c", "9"), "c": ("-c", "4")}),
        # an option keeps the place where it first appeared
        ("a -c 1 -l INFO -c:a 5", {"a": ("-c", "5", "-l", "INFO")}),
        # names with '-' are names, not ranges
        ("eu-west us-east -Q:eu-west eu", {"eu-west": ("-Q", "eu"), "us-east": ()}),
        # selectors by index on a count
        (
            "3 -c:1-3 4 -Q:w2 images",
            {"w1": ("-c", "4"), "w2": ("-c", "4", "-Q", "images"), "w3": ("-c", "4")},
        ),
        # name with '@' and non-ASCII
        ("w1@host köln -c:köln 3", {"w1@host": (), "köln": ("-c", "3")}),
        ("w1@host köln -c:w1@host 3", {"w1@host": ("-c", "3"), "köln": ()}),
    ],
)
def test_worker_options_and_overrides(args: str, expected: dict[str, tuple[str, ...]]) -> None:
    """Options reach every node; -opt:SEL overrides reach the selected ones, by the one rule."""
    assert table(run(args)) == expected


def test_passthrough_goes_last_to_every_node() -> None:
    """Everything after -- reaches every node, untouched, after its options."""
    specs = run("a b -c:1 2", passthrough=("--jobs", "/srv/%n", "-c", "9"))
    assert table(specs) == {
        "a": ("-c", "2", "--jobs", "/srv/%n", "-c", "9"),
        "b": ("--jobs", "/srv/%n", "-c", "9"),
    }


def test_double_dash_inside_args_is_passthrough() -> None:
    """A -- left inside the verb's tokens starts the pass-through arguments."""
    assert table(run("a -c 2 -- -x y")) == {"a": ("-c", "2", "-x", "y")}


def test_argv_is_command_plus_args() -> None:
    """NodeSpec.argv is the launcher command followed by the node's arguments."""
    (spec,) = run("a -c 2", passthrough=("z",))
    assert spec.argv == ("/opt/stem/bin/stem-worker", "-c", "2", "z")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ("a b -c:3 4", "'3'"),
        ("a b -c:0 4", "'0'"),
        ("a b -c:1-3 4", "'1-3'"),
        ("a b -c:2-1 4", "'2-1'"),
        ("a b -Q:gamma x", "'gamma'"),
        ("a b -Q:a,zeta x", "'zeta'"),
        ("a b --queues:=x", "empty node selector"),
        ("a b -c: 3", "empty node selector"),
    ],
)
def test_selector_matching_no_node_is_a_usage_error(args: str, fragment: str) -> None:
    """A selector (or any item of one) that matches no node is a usage error naming it."""
    with pytest.raises(UsageError) as exc:
        run(args)
    assert fragment in exc.value.message
    assert exc.value.exit_code == 2


def test_stray_word_after_options_is_a_usage_error() -> None:
    """A second bare word after an option is refused: names go before options."""
    with pytest.raises(UsageError) as exc:
        run("a -Q images video")
    assert "'video'" in exc.value.message


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("a/b", "'/'"),
        ("tab\tx", "control character"),
        ("bell\x07", "control character"),
        ("", "empty"),
        ("50%", "'%'"),
        ("2", "index or range"),
        ("1-3", "index or range"),
        ("x" * 300, "too long"),
        (".", "directory name"),
        ("..", "directory name"),
    ],
)
def test_bad_node_names_are_refused(name: str, fragment: str) -> None:
    """Names that cannot name a pidfile or unit are one clear usage error naming the node."""
    with pytest.raises(UsageError) as exc:
        run(["alpha", name])
    assert fragment in exc.value.message
    assert exc.value.hint


def test_leading_dash_name_is_refused() -> None:
    """A name starting with '-' (here from STEM_WORKER_NODES) is refused: it reads as an option."""
    with pytest.raises(UsageError) as exc:
        run([], nodes=("alpha", "-x"), sources={"STEM_WORKER_NODES": "STEM_WORKER_NODES at f:3"})
    assert "starts with '-'" in exc.value.message
    assert exc.value.message.endswith("(from STEM_WORKER_NODES at f:3)")


def test_duplicate_names_are_refused() -> None:
    """Naming a node twice is a usage error (one pidfile, one unit)."""
    with pytest.raises(UsageError, match="named twice"):
        run("a b a")


@pytest.mark.parametrize("count", ["0", "1001"])
def test_count_out_of_range(count: str) -> None:
    """A count of 0 or over the limit is a usage error."""
    with pytest.raises(UsageError, match="node count"):
        run(count)


# ---- placeholders in templates ---------------------------------------------


def test_default_templates() -> None:
    """%n/%I in the default templates: pidfile fully expanded, logfile keeps %I."""
    (spec,) = run("alpha")
    assert spec.pidfile == Path("/run/stem/alpha.pid")
    assert spec.logfile == "/var/log/stem/alpha%I.log"
    assert spec.main_logfile == Path("/var/log/stem/alpha.log")


def test_every_placeholder() -> None:
    """%n %h %i %I %% expand in the command, pidfile and logfile templates."""
    specs = run(
        "a b",
        command=("/bin/w", "--name=%n@%h", "--index=%i", "--log=/l/%n%I.log", "100%%"),
        pidfile="/p/%h/%n-%i%I%%.pid",
        logfile="/l/%n-%i%I%%.log",
    )
    b = specs[1]
    assert b.command == ("/bin/w", "--name=b@box", "--index=2", "--log=/l/b%I.log", "100%")
    assert b.pidfile == Path("/p/box/b-2%.pid")
    assert b.logfile == "/l/b-2%I%%.log"
    assert b.main_logfile == Path("/l/b-2%.log")


def test_literal_percent_i_never_becomes_live() -> None:
    """A literal %%I stays literal: escaped for the launcher, never a live %I."""
    (spec,) = run("a", logfile="/l/%n%%I%I.log", pidfile="/p/%n%%I.pid")
    assert spec.logfile == "/l/a%%I%I.log"
    assert spec.main_logfile == Path("/l/a%I.log")
    assert spec.pidfile == Path("/p/a%I.pid")


def test_node_environment() -> None:
    """Each node's environment names it, its index, pidfile and logfile template."""
    specs = run("a b", file_env={"FROM_FILE": "1"})
    assert dict(specs[1].env) == {
        "FROM_FILE": "1",
        "STEM_WORKER_NODE": "b",
        "STEM_WORKER_INDEX": "2",
        "STEM_WORKER_PIDFILE": "/run/stem/b.pid",
        "STEM_WORKER_LOGFILE": "/var/log/stem/b%I.log",
    }


def test_pidfile_has_no_percent_left() -> None:
    """No pidfile path ever keeps a % from a placeholder, whatever the template."""
    for template in ("/p/%n.pid", "/p/%n%I.pid", "/p/%h-%i.pid"):
        for spec in run("a b c", pidfile=template):
            assert "%" not in str(spec.pidfile)


def test_placeholders_not_expanded_in_worker_options() -> None:
    """Worker options and -- arguments reach the launcher verbatim, percent signs included."""
    (spec,) = run("a --fmt=%d", passthrough=("%n",))
    assert spec.args == ("--fmt=%d", "%n")


@pytest.mark.parametrize(
    ("field", "template", "what"),
    [
        ("pidfile", "/p/%x.pid", "pidfile"),
        ("logfile", "/l/%N.log", "logfile"),
        ("command", ("/bin/w", "--d=%d"), "command"),
        ("pidfile", "/p/%n%", "pidfile"),
    ],
)
def test_unknown_placeholder_is_a_usage_error(field: str, template: Any, what: str) -> None:
    """An unknown placeholder (or a trailing %) names the template and the placeholder."""
    with pytest.raises(UsageError) as exc:
        run("a", **{field: template})
    assert what in exc.value.message
    assert exc.value.exit_code == 2
    assert exc.value.hint and "%n" in exc.value.hint


@pytest.mark.parametrize(
    ("template", "suffix", "expected"),
    [
        ("/l/a%I.log", "", "/l/a.log"),
        ("/l/a%I.log", "-2", "/l/a-2.log"),
        ("/l/100%%/a%I.log", "-1", "/l/100%/a-1.log"),
        ("/l/a%%I.log", "-1", "/l/a%I.log"),
        ("/l/a.log", "-1", "/l/a.log"),
    ],
)
def test_launcher_expands_suffix_in_one_pass(template: str, suffix: str, expected: str) -> None:
    """expand_suffix turns %I into the process suffix and %% into %, never re-reading output."""
    assert placeholders.expand_suffix(template, suffix) == expected


def test_launcher_refuses_other_placeholders() -> None:
    """A logfile template with %n left is refused by the launcher's expansion."""
    with pytest.raises(UsageError, match="placeholder %n left"):
        placeholders.expand_suffix("/l/%n%I.log", "")


def test_node_spec_for_one_named_node() -> None:
    """node_spec builds one node by name, as expand would, taking args verbatim."""
    spec = node_spec("alpha", BASE, "box", index=3, args=["-c", "2"])
    assert (spec.name, spec.index, spec.args) == ("alpha", 3, ("-c", "2"))
    assert spec.pidfile == Path("/run/stem/alpha.pid")
    assert spec.env["STEM_WORKER_INDEX"] == "3"


def test_node_spec_never_reads_a_count() -> None:
    """node_spec refuses a numeric name instead of reading it as a count."""
    with pytest.raises(UsageError, match="index or range"):
        node_spec("2", BASE, "box")

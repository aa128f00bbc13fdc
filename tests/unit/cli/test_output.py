from ansible_collections.pycontainer.engine.plugins.module_utils.cli.output import (
    render,
    render_table,
    render_template,
)


def test_table_pads_columns_with_three_spaces_like_docker():
    text = render_table(["REPOSITORY", "TAG"], [["busybox", "latest"], ["a", "b"]])
    assert text.splitlines() == ["REPOSITORY   TAG", "busybox      latest", "a            b"]


def test_narrow_columns_are_ten_wide_like_dockers_tabwriter():
    assert render_table(["IMAGE", "X"], [["busybox", "y"]]).splitlines() == ["IMAGE     X", "busybox   y"]


def test_json_format_is_one_object_per_line():
    rows = [{"ID": "abc", "Names": "x"}, {"ID": "def", "Names": "y"}]
    assert render(rows, [("CONTAINER ID", "ID")], "json") == '{"ID":"abc","Names":"x"}\n{"ID":"def","Names":"y"}'


def test_template_fields_and_json_function():
    row = {"ID": "abc", "State": {"Status": "running"}, "Labels": {"a": "1"}}
    assert render_template("{{.ID}}\\t{{.State.Status}} {{json .Labels}}", row) == 'abc\trunning {"a":"1"}'


def test_table_template_uses_known_headers():
    rows = [{"ID": "abc", "Names": "x"}]
    out = render(rows, [("CONTAINER ID", "ID"), ("NAMES", "Names")], "table {{.ID}}\t{{.Names}}")
    assert out.splitlines() == ["CONTAINER ID   NAMES", "abc            x"]


def test_cli_builds_only_the_named_verb_but_lists_every_verb():
    from ansible_collections.pycontainer.engine.plugins.module_utils.cli.main import build_parser

    full = build_parser()
    lazy = build_parser(["--root", "/x", "ps", "-a"])

    def verbs(p):
        return sorted(p._subparsers._group_actions[0].choices)

    assert verbs(full) == verbs(lazy)
    assert lazy.parse_args(["--root", "/x", "ps", "-a", "--format", "json"]).format == "json"
    assert build_parser(["run", "--rm", "img", "echo", "-n"]).parse_args(
        ["run", "--rm", "img", "echo", "-n"]).command == ["echo", "-n"]

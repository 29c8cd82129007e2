from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLES, SUBSCRIBERS, files_opened, opened, smtp_env, stored_text

from digest.cli import cli
from digest.ranking.keyphrases import occurs_verbatim

COMMANDS = [
    ["ingest"],
    ["papers"],
    ["rank"],
    ["preview"],
    ["send"],
    ["run"],
    ["schedule"],
    ["subscribers"],
    ["subscribers", "check"],
    ["subscribers", "resubscribe"],
    ["db"],
    ["db", "copy"],
    ["status"],
    ["serve"],
    ["feedback"],
]


@pytest.fixture
def env(tmp_path: Path, database: str) -> dict[str, str]:
    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLES, inbox)
    return {
        "DIGEST_SUBSCRIBERS": str(SUBSCRIBERS),
        "DIGEST_DB": database,
        "DIGEST_STATE": str(tmp_path / "var"),
        "DIGEST_INBOX": str(inbox),
        "DIGEST_OUTBOX": str(tmp_path / "var" / "outbox"),
        "DIGEST_MODEL": "hashing",
        "DIGEST_SMTP_HOST": "",
        # noon UTC on the newest sample day: past every sample subscriber's local send time
        "DIGEST_NOW": "2026-11-20T12:00:00Z",
    }


def invoke(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_text(command: list[str]):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert len(result.output.split("\n\n")[1].strip()) > 10


def test_one_run_opens_subscribers_yaml_once(env: dict[str, str]):
    """Its subscribers and its sources come from one reading of the file."""
    with files_opened() as opened:
        assert invoke(env, "run", "--day", "2026-11-20").exit_code == 0
    assert opened.count(str(Path(env["DIGEST_SUBSCRIBERS"]).resolve())) == 1


def test_run_delivers_one_digest_per_subscriber_into_the_outbox(env: dict[str, str], tmp_path: Path):
    result = invoke(env, "run")
    assert result.exit_code == 0, result.output
    emls = sorted((tmp_path / "var" / "outbox" / "2026-11-20").glob("*.eml"))
    assert [p.stem for p in emls] == ["alice", "bob", "carol"]
    assert all(p.with_suffix(".html").exists() for p in emls)
    assert "alice.eml" in result.output and "alice.html" in result.output


def test_second_run_for_the_same_day_sends_nothing(env: dict[str, str], tmp_path: Path):
    invoke(env, "run")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "var" / "outbox").rglob("*.eml")}
    result = invoke(env, "run")
    assert result.exit_code == 0
    assert " sent " not in result.output  # and, without a terminal, nothing to say at all
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "var" / "outbox").rglob("*.eml")} == before


def test_papers_json_has_the_contract_fields(env: dict[str, str]):
    invoke(env, "ingest")
    papers = json.loads(invoke(env, "papers", "--day", "2026-11-19", "--json").output)
    assert len(papers) == 8
    for key in (
        "id",
        "title",
        "abstract",
        "authors",
        "authors_count",
        "published",
        "upvotes",
        "organization",
        "url",
        "day",
        "source",
    ):
        assert key in papers[0]
    assert papers[0]["authors_count"] == 9 and papers[0]["upvotes"] == 14


def test_rank_json_limit_zero_scores_every_paper_for_every_subscriber(env: dict[str, str]):
    invoke(env, "ingest")
    ranked = json.loads(invoke(env, "rank", "--json", "--limit", "0").output)
    assert set(ranked) == {"alice", "bob", "carol"}
    # 24 distinct papers over the three sample days; alice's `exclude` drops the CT paper
    assert {who: len(rows) for who, rows in ranked.items()} == {"alice": 23, "bob": 24, "carol": 24}
    assert "Segmenting Tumours in Low-Dose CT with Diffusion Priors" not in {
        r["title"] for r in ranked["alice"]
    }
    for rows in ranked.values():
        assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
        assert {"paper_id", "title", "score", "matched", "keyphrases"} <= set(rows[0])
        assert all(
            0 <= r["score"] <= 1 and 0 <= r["relevance"] <= 1 and 0 <= r["trending"] <= 1 for r in rows
        )


def test_rank_json_and_the_mail_show_only_phrases_that_occur_in_the_paper(
    env: dict[str, str], tmp_path: Path
):
    invoke(env, "ingest")
    ranked = json.loads(invoke(env, "rank", "--json", "--limit", "0").output)
    papers = {
        p["id"]: p
        for day in ("2026-11-18", "2026-11-19", "2026-11-20")
        for p in json.loads(invoke(env, "papers", "--day", day, "--json").output)
    }
    shown = set()
    for rows in ranked.values():
        for r in rows:
            text = " ".join(
                f"{papers[r['paper_id']]['title']} {papers[r['paper_id']]['abstract']}".lower().split()
            )
            for phrase in r["keyphrases"]:
                assert occurs_verbatim(phrase, text), (phrase, r["title"])
                shown.add(phrase.lower())
    assert shown and not shown & {"phones quantize", "fidelity distilling"}
    out = tmp_path / "alice.html"
    invoke(env, "preview", "--user", "alice", "--out", str(out))
    html = out.read_text()
    assert "phones quantize" not in html.lower() and "fidelity distilling" not in html.lower()


def test_preview_prints_a_summary_and_writes_the_html(env: dict[str, str], tmp_path: Path):
    invoke(env, "ingest")
    out = tmp_path / "alice.html"
    result = invoke(env, "preview", "--user", "alice", "--out", str(out))
    assert result.exit_code == 0
    assert "1. " in result.output and f"wrote {out}" in result.output
    assert out.read_text().lower().startswith("<!doctype html>")


def test_preview_of_an_unknown_user_is_one_line_and_exit_2(env: dict[str, str]):
    result = CliRunner().invoke(cli, ["preview", "--user", "zed"], env=env)
    assert result.exit_code == 2
    assert result.output.strip().startswith("digest: no subscriber 'zed'")


def test_bad_file_in_a_batch_is_reported_and_the_good_ones_are_stored(env: dict[str, str]):
    (Path(env["DIGEST_INBOX"]) / "2026-11-21.txt").write_bytes(b"\x00\x00binary")
    result = CliRunner().invoke(cli, ["ingest"], env=env)
    assert result.exit_code == 1
    assert "2026-11-21.txt: binary file" in result.output
    papers = json.loads(invoke(env, "papers", "--day", "2026-11-20", "--json").output)
    assert len(papers) == 8  # the ninth paper of that dump arrived on 2026-11-19 and keeps that day


def test_broken_subscribers_file_refuses_the_run_and_sends_nothing(env: dict[str, str], tmp_path: Path):
    broken = tmp_path / "subs.yaml"
    broken.write_text("subscribers:\n  - id: alice\n    keywords: [x]\n")
    result = CliRunner().invoke(cli, ["run"], env={**env, "DIGEST_SUBSCRIBERS": str(broken)})
    assert result.exit_code == 2
    assert "field 'email'" in result.output
    assert not (tmp_path / "var" / "outbox").exists()


def test_schedule_list_prints_each_next_send_in_local_time_and_utc(env: dict[str, str]):
    result = invoke({**env, "DIGEST_NOW": "2026-11-20T05:00:00Z"}, "schedule", "--list")
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert "Fri 20 Nov 07:30 CET" in lines["alice"] and "Fri 20 Nov 06:30" in lines["alice"]
    assert "Fri 20 Nov 07:00 EST" in lines["bob"] and "Fri 20 Nov 12:00" in lines["bob"]
    assert "Sat 21 Nov 06:45 IST" in lines["carol"] and "Sat 21 Nov 01:15" in lines["carol"]  # 10:30 there


def test_schedule_list_shows_unsubscribed_and_inactive_readers_with_no_next_send(env, tmp_path: Path):
    subs = tmp_path / "subscribers.yaml"
    subs.write_text(
        SUBSCRIBERS.read_text().replace("  - id: carol\n", "  - id: carol\n    active: false\n")
    )
    env = {**env, "DIGEST_SUBSCRIBERS": str(subs), "DIGEST_NOW": "2026-11-20T05:00:00Z"}
    with opened(env["DIGEST_DB"]) as store:
        store.unsubscribe("bob", "one-click")  # the link in the mail
    result = invoke(env, "schedule", "--list")
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert "Fri 20 Nov 07:30 CET" in lines["alice"]
    assert lines["bob"].split()[2] == "unsubscribed" and "(one-click)" in lines["bob"]
    assert lines["bob"].endswith(" -") and " Nov " not in lines["bob"]
    assert lines["carol"].split()[2:] == ["inactive", "-"]


def test_run_sends_only_to_those_whose_local_morning_has_come(env: dict[str, str]):
    early = invoke({**env, "DIGEST_NOW": "2026-11-20T07:00:00Z"}, "run")  # 08:00 Berlin, 02:00 New York
    assert early.exit_code == 0
    sent = {line.split()[0] for line in early.output.splitlines() if " sent " in line}
    assert sent == {"alice", "carol"}
    later = invoke({**env, "DIGEST_NOW": "2026-11-20T13:00:00Z"}, "run")
    assert {line.split()[0] for line in later.output.splitlines() if " sent " in line} == {"bob"}
    quiet = invoke({**env, "DIGEST_NOW": "2026-11-20T23:00:00Z"}, "run")  # not a terminal, as under cron
    assert quiet.exit_code == 0 and " sent " not in quiet.output and "nothing due" not in quiet.output


def test_send_to_a_test_address_leaves_the_ledger_alone(env: dict[str, str], smtp_server):
    controller, inbox = smtp_server
    smtp = smtp_env(env, controller.port)
    invoke(smtp, "ingest")
    assert invoke(smtp, "send", "--user", "alice", "--to", "me@example.org").exit_code == 0
    assert len(inbox.to("me@example.org")) == 1
    assert "deliveries: none" in invoke(smtp, "status").output


def test_send_over_smtp_reaches_each_subscriber_once(env: dict[str, str], smtp_server):
    controller, inbox = smtp_server
    smtp = smtp_env(env, controller.port)
    assert invoke(smtp, "run").exit_code == 0
    assert invoke(smtp, "send").exit_code == 0
    for address in ("alice@example.org", "bob@example.org", "carol@example.org"):
        assert len(inbox.to(address)) == 1
    assert "3 sent" in invoke(smtp, "status").output


def test_truncated_dump_keeps_its_complete_papers_and_says_which_was_left_out(env, tmp_path: Path):
    text = (SAMPLES / "2026-11-18.txt").read_text()
    cut = tmp_path / "2026-11-21.txt"
    cut.write_text(text[: text.rindex("Low-dose computed tomography") + 60])
    result = CliRunner().invoke(cli, ["ingest", str(cut)], env=env)
    assert result.exit_code == 1
    assert f"{cut}: 7 papers" in result.output
    assert "'Segmenting Tumours in Low-Dose CT with Diffusion Priors' looks cut off" in result.output


def test_a_bad_record_is_named_and_nothing_stored_before_is_lost(env: dict[str, str], tmp_path: Path):
    invoke(env, "ingest")
    before = json.loads(invoke(env, "papers", "--day", "2026-11-19", "--json").output)
    bad = tmp_path / "2026-11-19.jsonl"
    bad.write_text('{"title": "A", "abstract": "fine"}\n{"title": "B"}\n')
    result = CliRunner().invoke(cli, ["ingest", str(bad)], env=env)
    assert result.exit_code == 1 and f"digest: {bad}:2: field 'abstract'" in result.output
    assert f"{bad}: {bad}" not in result.output  # the file is named once
    after = json.loads(invoke(env, "papers", "--day", "2026-11-19", "--json").output)
    assert after[: len(before)] == before  # every stored paper as it was
    assert [p["title"] for p in after[len(before) :]] == ["A"]  # the good record went in


def test_ingest_fetches_a_feed_url_and_remembers_it(env: dict[str, str]):
    from functools import partial
    from http.server import SimpleHTTPRequestHandler

    from conftest import FIXTURES, http_server

    with http_server(partial(SimpleHTTPRequestHandler, directory=str(FIXTURES))) as base:
        url = f"{base}/arxiv_rss2.xml"
        refused = CliRunner().invoke(cli, ["ingest", url, "--day", "2026-11-20"], env=env)
        assert refused.exit_code == 1 and "127.0.0.1" in refused.output  # loopback: not by default
        env = {**env, "DIGEST_INGEST_ALLOW_PRIVATE": "1"}
        first = invoke(env, "ingest", url, "--day", "2026-11-20")
        assert first.exit_code == 0 and f"{url}: 3 papers (2 new" in first.output
        assert "already ingested" in invoke(env, "ingest", url, "--day", "2026-11-20").output
        missing = CliRunner().invoke(cli, ["ingest", url.replace("rss2", "nope")], env=env)
        assert missing.exit_code == 1 and "answered 404" in missing.output


def test_a_url_query_string_never_reaches_the_screen_or_the_store(env: dict[str, str]):
    from functools import partial
    from http.server import SimpleHTTPRequestHandler

    from conftest import FIXTURES, http_server

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # the test server's own log shows the URL
            pass

    env = {**env, "DIGEST_INGEST_ALLOW_PRIVATE": "1"}
    with http_server(partial(Quiet, directory=str(FIXTURES))) as base:
        url = f"{base}/arxiv_rss2.xml?api_key=SECRET123&day=1"
        ingested = invoke(env, "ingest", url, "--day", "2026-11-20")
    assert ingested.exit_code == 0 and "api_key=***" in ingested.output
    shown = [
        ingested.output,
        invoke(env, "status").output,
        invoke(env, "papers", "--day", "2026-11-20", "--json").output,
        *stored_text(env["DIGEST_DB"]),
    ]
    assert all("SECRET123" not in text for text in shown)


def test_profile_papers_rank_by_nearness_and_name_the_closest_own_paper(env, tmp_path: Path):
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "dana.jsonl").write_text(
        '{"title": "Graph neural networks for session recommendation", "abstract": "We study graph neural '
        'networks that recommend the next item in a session from clicks."}\n'
        '{"title": "Hypergraph message passing", "abstract": "Message passing on hypergraphs improves '
        'recommendation of items to users."}\n'
    )
    subs = tmp_path / "subscribers.yaml"
    subs.write_text(
        "subscribers:\n  - id: dana\n    email: dana@example.org\n    profile_papers: [papers/dana.jsonl]\n"
    )
    env = {**env, "DIGEST_SUBSCRIBERS": str(subs)}
    check = invoke(env, "subscribers", "check")
    assert check.exit_code == 0
    assert "from 1 profile file(s)/paper(s): " in check.output
    invoke(env, "ingest")
    ranked = json.loads(invoke(env, "rank", "--json").output)["dana"]
    assert any("Hypergraph" in r["title"] for r in ranked[:3])  # her own topic: graph-based recommendation
    own = {"Graph neural networks for session recommendation", "Hypergraph message passing"}
    assert all(r["matched"] or r["close_to"] in own for r in ranked)  # every pick says why
    assert ranked[0]["close_to"] in own


def test_subscribers_check_lists_a_missing_profile_file_and_a_misspelled_zone_with_the_other_problems(
    env, tmp_path: Path
):
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "erin.jsonl").write_text('{"title": "A paper", "abstract": "Its abstract."}\n')
    subs = tmp_path / "subscribers.yaml"
    subs.write_text(
        "subscribers:\n"
        "  - id: dana\n"
        "    emial: dana@example.org\n"
        "    timezone: America/Los_Angles\n"
        "    profile_papers:\n"
        "      - papers/erin.jsonl\n"
        "      - nope.jsonl\n"
        "      - '2401.12345'\n"  # a stored paper's id: looked up when ranking
    )
    result = CliRunner().invoke(cli, ["subscribers", "check"], env={**env, "DIGEST_SUBSCRIBERS": str(subs)})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"digest: {subs}: subscriber 'dana': unknown field 'emial' (did you mean 'email'?) (line 3)",
        f"digest: {subs}: subscriber 'dana', field 'email' (line 2): required",
        f"digest: {subs}: subscriber 'dana', field 'profile_papers' (line 7): 'nope.jsonl' is neither a file "
        f"(relative to {tmp_path}) nor the id of a paper such as 2401.12345",
        f"digest: {subs}: subscriber 'dana', field 'timezone' (line 4): 'America/Los_Angles' is not an IANA "
        "time zone such as Europe/Berlin (did you mean 'America/Los_Angeles'?)",
    ]


def test_nothing_new_sends_a_short_note_only_to_those_who_asked(env, tmp_path: Path):
    subs = tmp_path / "subscribers.yaml"
    subs.write_text(
        "subscribers:\n"
        "  - {id: dana, email: dana@example.org, keywords: [lattice qcd], send_empty: true}\n"
        "  - {id: erin, email: erin@example.org, keywords: [lattice qcd]}\n"
    )
    result = invoke({**env, "DIGEST_SUBSCRIBERS": str(subs)}, "run")
    assert result.exit_code == 0, result.output
    outbox = tmp_path / "var" / "outbox" / "2026-11-20"
    assert [p.name for p in outbox.glob("*.eml")] == ["dana.eml"]
    assert "No new papers for your interests today" in (outbox / "dana.eml").read_text()
    assert "erin           skipped" in result.output


def test_every_delivered_digest_is_archived_as_a_standalone_page(env, tmp_path: Path):
    invoke(env, "run")
    archive = tmp_path / "var" / "archive" / "2026-11-20"
    assert sorted(p.name for p in archive.glob("*.html")) == ["alice.html", "bob.html", "carol.html"]
    assert archive.joinpath("alice.html").read_text().lower().startswith("<!doctype html>")


def test_consecutive_days_never_repeat_a_paper_and_unsent_papers_are_caught_up(env: dict[str, str]):
    assert invoke(env, "run", "--day", "2026-11-19").exit_code == 0
    assert invoke(env, "run", "--day", "2026-11-20").exit_code == 0
    with opened(env["DIGEST_DB"]) as store:
        by_day = {(d.subscriber_id, d.day): set(d.paper_ids) for d in store.deliveries()}
        days = {p.id: p.day for p in store.papers()}
    for who in ("alice", "bob", "carol"):
        first, second = by_day[(who, date(2026, 11, 19))], by_day[(who, date(2026, 11, 20))]
        assert first and second and not first & second
    # the 18th's papers were never sent to anyone on the 18th: the 19th's digest caught them up
    assert any(days[p] == date(2026, 11, 18) for p in by_day[("alice", date(2026, 11, 19))])


def test_an_oversized_inbox_file_is_refused_by_size_and_the_rest_go_in(env: dict[str, str], monkeypatch):
    from digest import sources

    monkeypatch.setattr(sources, "MAX_BYTES", 4000)  # the sample dumps are 4.4-4.7 KB
    result = CliRunner().invoke(cli, ["ingest"], env=env)
    assert result.exit_code == 1
    assert result.output.count("over the 0 MB limit; split the file") == 3


def test_papers_shows_math_readably_and_json_keeps_the_stored_text(env: dict[str, str], tmp_path: Path):
    dump = tmp_path / "2026-11-21.jsonl"
    dump.write_text(json.dumps({"title": r"$\bf{D^3}$QE: a detector", "abstract": "It detects."}) + "\n")
    assert invoke(env, "ingest", str(dump)).exit_code == 0
    assert "D³QE: a detector" in invoke(env, "papers", "--day", "2026-11-21").output
    (paper,) = json.loads(invoke(env, "papers", "--day", "2026-11-21", "--json").output)
    assert paper["title"] == r"$\bf{D^3}$QE: a detector"


def test_a_subscriber_at_a_local_host_is_checked_against_the_smtp_host(env, tmp_path: Path):
    subs = tmp_path / "subscribers.yaml"
    subs.write_text("subscribers:\n  - id: root\n    email: root@localhost\n    keywords: [diffusion]\n")
    env = {**env, "DIGEST_SUBSCRIBERS": str(subs)}
    assert invoke(env, "subscribers", "check").exit_code == 0  # the outbox: this machine
    assert invoke({**env, "DIGEST_SMTP_HOST": "127.0.0.1"}, "subscribers", "check").exit_code == 0
    remote = {**env, "DIGEST_SMTP_HOST": "smtp.example.org", "DIGEST_FROM": "digest@example.org"}
    refused = invoke(remote, "subscribers", "check")
    assert refused.exit_code == 2
    assert (
        "subscriber 'root', field 'email' (line 3): root@localhost has no domain with a dot; "
        "allowed only when DIGEST_SMTP_HOST is this machine" in refused.output
    )


def test_a_test_copy_to_a_local_mailbox_goes_to_the_outbox(env, tmp_path: Path):
    invoke(env, "ingest")
    result = invoke(env, "send", "--user", "alice", "--to", "me@myhost")
    assert result.exit_code == 0, result.output
    (eml,) = (tmp_path / "var" / "outbox").rglob("test-alice.eml")
    assert "To: me@myhost" in eml.read_text()
    remote = {**env, "DIGEST_SMTP_HOST": "smtp.example.org", "DIGEST_FROM": "digest@example.org"}
    refused = invoke(remote, "send", "--user", "alice", "--to", "me@myhost")
    assert refused.exit_code == 2 and "allowed only when DIGEST_SMTP_HOST is this machine" in refused.output


@pytest.mark.parametrize("browser", ["refuses", "raises"])
def test_preview_open_without_a_browser_says_where_the_file_is_and_how_to_open_it(
    env, tmp_path: Path, monkeypatch, browser: str
):
    import webbrowser

    def no_browser(url: str) -> bool:  # a machine without one: a server, a container, CI
        if browser == "raises":
            raise webbrowser.Error("could not locate runnable browser")
        return False

    monkeypatch.setattr(webbrowser, "open", no_browser)
    invoke(env, "ingest")
    result = invoke(env, "preview", "--user", "alice", "--open")
    assert result.exit_code == 0
    written = tmp_path / "var" / "preview" / "2026-11-20" / "alice.html"
    assert written.exists()
    assert f"no browser could be opened here; open {written.resolve().as_uri()}" in result.stderr
    assert "--format text" in result.stderr


DAY_HELP = {  # what each command does without --day, as its code does it
    "ingest": "the date in the file's name, else today",
    "papers": "the newest day with papers",
    "rank": "the newest day with papers",
    "preview": "the newest day with papers",
    "send": "the newest day with papers",
    "run": "their own local date, once their send time has come",
    "fetch": "(default: today)",
}


@pytest.mark.parametrize("command", sorted(DAY_HELP))
def test_day_help_says_what_the_command_does_without_it(command: str):
    help_text = " ".join(CliRunner().invoke(cli, [command, "--help"]).output.split())
    assert DAY_HELP[command] in help_text


@pytest.mark.parametrize("command", ["papers", "rank"])
def test_json_help_says_what_it_prints_and_where_the_fields_are(command: str):
    help_text = " ".join(CliRunner().invoke(cli, [command, "--help"]).output.split())
    assert "contract" not in help_text
    assert "JSON" in help_text and "the README lists the fields" in help_text


def test_without_day_ingest_files_undated_papers_today_and_papers_lists_the_newest_day(env, tmp_path: Path):
    undated = tmp_path / "undated.jsonl"
    undated.write_text('{"title": "An undated paper", "abstract": "About nothing in particular."}\n')
    today = {**env, "DIGEST_NOW": "2030-01-02T12:00:00Z"}
    assert invoke(today, "ingest", str(undated)).exit_code == 0
    listed = invoke(today, "papers")
    assert listed.output.splitlines()[-1] == "1 papers on 2030-01-02"


def test_make_demo_keeps_its_own_database_and_outbox_so_a_real_install_never_sees_its_days(tmp_path: Path):
    """The demo's own command line (from `make -n demo`), run in an empty folder: its papers, mail
    and state go under var/demo/, and a real install's `send --dry-run` there picks none of its days."""
    import os
    import shlex
    import subprocess
    import sys

    ROOT = Path(__file__).resolve().parent.parent
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    recipe = subprocess.run(
        ["make", "-n", "-s", "-C", str(ROOT), "demo"], capture_output=True, text=True, check=True
    ).stdout
    line = next(r for r in recipe.replace("\\\n", " ").splitlines() if " run --day " in r)
    words = shlex.split(line)
    at = next(i for i, w in enumerate(words) if w.endswith("/digest"))
    demo_env = dict(w.split("=", 1) for w in words[:at])
    assert demo_env["DIGEST_DB"].startswith("var/demo/") and demo_env["DIGEST_OUTBOX"].startswith("var/demo/")
    assert demo_env["DIGEST_SMTP_HOST"] == ""  # never real mail, whatever the shell exports
    shutil.copytree(SAMPLES, tmp_path / demo_env["DIGEST_INBOX"])
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "PYTHONPATH": str(ROOT),
        "DIGEST_SUBSCRIBERS": str(SUBSCRIBERS),
        "DIGEST_MODEL": "hashing",
        "DIGEST_NOW": "2026-12-01T12:00:00Z",
    }

    def digest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "digest", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    demo = digest({**base, **demo_env}, *words[at + 1 :])
    assert demo.returncode == 0, demo.stderr
    assert "var/demo/outbox/2026-11-20/alice.eml" in demo.stdout  # it still says where the mails are
    assert sorted(p.name for p in (tmp_path / "var" / "demo" / "outbox" / "2026-11-20").glob("*.eml")) == [
        "alice.eml",
        "bob.eml",
        "carol.eml",
    ]
    assert not (tmp_path / "var" / "digest.db").exists()
    real = digest(base, "send", "--dry-run")  # the real install: ./var/digest.db, empty
    assert real.returncode == 0, real.stderr
    assert "2026-11-" not in real.stdout


def test_without_a_terminal_each_long_stage_leaves_one_line_on_stderr_and_json_stays_pure(env, monkeypatch):
    from digest import progress

    invoke(env, "ingest")
    monkeypatch.setattr(progress, "LONG", 3600.0)  # an hourly run under cron: every stage is quick
    quick = invoke(env, "rank", "--json")
    assert quick.stderr == ""
    assert set(json.loads(quick.stdout)) == {"alice", "bob", "carol"}
    monkeypatch.setattr(progress, "LONG", 0.0)  # every stage counts as long
    ranked = invoke(env, "rank", "--json")
    assert set(json.loads(ranked.stdout)) == {"alice", "bob", "carol"}  # stdout: the JSON alone
    said = ranked.stderr.splitlines()
    assert all(line.startswith("digest: ") and " in " in line for line in said)
    assert said[-1].startswith("digest: ranked 2026-11-20's papers for 3 subscribers in ")


def test_a_run_says_each_stage_once_without_a_terminal_and_nothing_with_quiet(env, monkeypatch):
    from digest import progress

    monkeypatch.setattr(progress, "LONG", 0.0)
    run = invoke(env, "run", "--day", "2026-11-20")
    assert run.exit_code == 0
    said = run.stderr.splitlines()
    assert said[0].startswith("digest: read 3 files (25 papers) in ")
    assert said[-1].startswith("digest: sent 3 of 3 digests in ")
    assert any(line.startswith("digest: ranked 2026-11-20's papers for 3 subscribers in ") for line in said)
    assert "digest:" not in run.stdout  # the results, on stdout, as before
    quiet = [
        invoke(env, "--quiet", "run", "--day", "2026-11-20"),  # the inbox is read again
        invoke(env, "--quiet", "send", "--user", "alice", "--to", "me@example.org"),  # ranks, sends
        invoke(env, "-q", "rank", "--json"),
    ]
    assert [r.exit_code for r in quiet] == [0, 0, 0]
    assert [r.stderr for r in quiet] == ["", "", ""]
    assert "test-alice.eml" in quiet[1].stdout and json.loads(quiet[2].stdout)

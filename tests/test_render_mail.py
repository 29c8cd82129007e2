from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from digest.delivery import render
from digest.delivery.mail import OutboxMailer, build_message, serialize
from digest.models import Links, Paper, Ranked, Subscriber
from digest.settings import Settings

DAY = date(2026, 11, 19)
SUB = Subscriber(id="alice", email="alice@example.org", name="Alice Liddell", keywords=("diffusion models",))
LINKS = Links("mailto:digest@localhost?subject=unsubscribe%20alice")


def _ranked(title: str = "Fast <b>Diffusion</b> & Friends", **kw) -> Ranked:
    paper = Paper(
        id="2511.00001",
        title=title,
        abstract="First sentence. Second sentence here. Third one. Fourth is cut.",
        authors=("A. One", "B. Two", "C. Three", "D. Four"),
        upvotes=12,
        day=date(2026, 11, 19),
        **kw,
    )
    return Ranked(paper, 0.61, ("diffusion models",), ("fast sampling", "distillation"))


def test_html_is_compiled_by_mjml_and_escapes_paper_text():
    digest = render.render(SUB, DAY, [_ranked()], LINKS)
    assert digest.html.lstrip().lower().startswith("<!doctype html>")
    assert "<mj-" not in digest.html
    assert "Fast &lt;b&gt;Diffusion&lt;/b&gt; &amp; Friends" in digest.html
    assert "https://arxiv.org/abs/2511.00001" in digest.html
    assert "diffusion models" in digest.html and "▲ 12" in digest.html
    assert "Good morning, Alice" in digest.html


def test_plain_text_has_the_same_papers_and_links():
    digest = render.render(SUB, DAY, [_ranked()], LINKS)
    assert "1. Fast <b>Diffusion</b> & Friends" in digest.text
    assert "https://arxiv.org/abs/2511.00001" in digest.text
    assert "A. One, B. Two, C. Three and 1 more" in digest.text
    assert "Matched: diffusion models" in digest.text
    assert "Fourth is cut" not in digest.text


def test_subject_gives_count_gist_and_date():
    assert render.subject_for([_ranked()], DAY) == "1 new paper on diffusion models — Thu 19 Nov"


def test_empty_day_renders_a_short_note():
    digest = render.render(SUB, DAY, [], LINKS)
    assert "Nothing new matched" in digest.text and "Nothing new matched" in digest.html


def test_message_is_multipart_alternative_text_then_html_with_list_headers(settings):
    digest = render.render(SUB, DAY, [_ranked()], LINKS)
    raw = build_message(digest, settings.smtp).as_bytes()
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["To"] == "Alice Liddell <alice@example.org>"
    assert msg["Subject"] == "1 new paper on diffusion models — Thu 19 Nov"
    assert msg["Message-ID"].endswith("@localhost>")
    assert msg["List-Unsubscribe"].startswith("<mailto:")
    assert msg["Auto-Submitted"] == "auto-generated"


def test_https_unsubscribe_and_one_click_header_when_base_url_is_set(settings):
    from dataclasses import replace

    from digest.delivery.send import Mailroom
    from digest.settings import WebSettings

    settings = replace(settings, web=WebSettings(base_url="https://digest.example.org", secret="k" * 32))
    digest = Mailroom.for_settings(settings).render(SUB, DAY, [_ranked()])
    msg = build_message(digest, settings.smtp)
    assert f"<{digest.links.unsubscribe_https}>, <mailto:" in msg["List-Unsubscribe"]
    assert digest.links.unsubscribe_https.startswith("https://digest.example.org/unsubscribe?t=")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert digest.links.unsubscribe_https in digest.html and digest.links.archive in digest.text


def test_a_newline_in_a_display_name_cannot_add_a_header(settings):
    from dataclasses import replace

    evil = replace(SUB, name="Alice\r\nBcc: victim@example.org")
    msg = build_message(render.render(evil, DAY, [_ranked()], LINKS), settings.smtp)
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed["To"].addresses[0].addr_spec == "alice@example.org"


def test_outbox_writes_the_eml_and_its_html(tmp_path: Path, settings):
    msg = build_message(render.render(SUB, DAY, [_ranked()], LINKS), settings.smtp)
    location = OutboxMailer(tmp_path).send(serialize(msg, settings.smtp, key="2026-11-19/alice"))
    assert location == str(tmp_path / "2026-11-19" / "alice.eml")
    assert message_from_bytes(Path(location).read_bytes())["To"]
    assert (tmp_path / "2026-11-19" / "alice.html").read_text().lower().startswith("<!doctype html>")


def test_twenty_paper_digest_stays_under_gmail_clipping():
    long_abstract = "A sentence that goes on about the method in detail. " * 20
    papers = [
        Ranked(
            Paper(
                id=f"2511.{i:05d}",
                title="A long title about diffusion models " * 3,
                abstract=long_abstract,
                authors=tuple(f"Author {j}" for j in range(12)),
                upvotes=99,
            ),
            0.7,
            ("diffusion models", "image generation", "video"),
            ("a", "b", "c"),
        )
        for i in range(20)
    ]
    html = render.render(SUB, DAY, papers, LINKS).html
    assert len(html.encode("utf-8")) < 100_000


def test_wire_bytes_use_crlf_and_encode_non_ascii_headers(settings):
    msg = build_message(render.render(SUB, DAY, [_ranked()], LINKS), settings.smtp)
    outgoing = serialize(msg, settings.smtp, key="k")
    head = outgoing.data.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b"")
    assert head.isascii()  # the em dash in the Subject travels as an encoded word
    assert outgoing.recipients == ("alice@example.org",) and outgoing.sender == "digest@localhost"


def test_math_in_titles_and_excerpts_reads_as_text_in_the_mail():
    ranked = _ranked(title=r"$\bf{D^3}$QE: Detecting Images with $O(n^2)$ Cost")
    digest = render.render(SUB, DAY, [ranked], LINKS)
    assert "D³QE: Detecting Images with O(n²) Cost" in digest.text
    assert "D³QE: Detecting Images with O(n²) Cost" in digest.html
    assert "\\bf" not in digest.html and "$" not in digest.text.split("Unsubscribe")[0]
    assert ranked.paper.title.startswith(r"$\bf{D^3}$")  # what is stored stays as ingested


def test_money_and_percent_signs_are_not_taken_for_math():
    from digest.text import readable

    assert readable("costs $5 and $6, 50% less") == "costs $5 and $6, 50% less"
    assert readable(r"$\alpha$-divergence at 50%") == "α-divergence at 50%"


def test_the_why_line_names_the_own_paper_a_pick_is_close_to_in_html_and_text():
    ranked = replace(_ranked(), matched=(), close_to="Graph <i>networks</i> for molecules")
    digest = render.render(SUB, DAY, [ranked], LINKS)
    assert "It is close to your paper “Graph <i>networks</i> for molecules”." in digest.text
    assert "It is close to your paper “Graph &lt;i&gt;networks&lt;/i&gt; for molecules”." in digest.html
    both = replace(ranked, matched=("diffusion models",))
    assert render.why_line(both) == (
        "It matches your interest “diffusion models”,"
        " and is close to your paper “Graph <i>networks</i> for molecules”."
    )


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        (r"a loss \(1/\tau^{2}\) scaled", "a loss 1/τ² scaled"),
        (r"for \(T \in R^{n\times d}\) inputs", "for T ∈ R^(n× d) inputs"),
        (r"display \[a_i + b_i\] math", "display aᵢ + bᵢ math"),
        (r"display $$x^2$$ math", "display x² math"),
        (r"$\mathcal{O}(n \log n)$ time", "𝒪(n log n) time"),
        (r"weights $W^{(l)}_{ij}$", "weights W^(l)ᵢⱼ"),
        ("Erdős--Rényi graphs", "Erdős–Rényi graphs"),
        ("graphs --- a study", "graphs — a study"),
        ("pages 10--20, not ---- rules", "pages 10–20, not ---- rules"),
        (r"$a-b$ and a--b", "a-b and a–b"),
        (r"the $\ell_{\infty}$ norm and $x_{\max}$", "the ℓ_∞ norm and x_max"),
        ("a --> b <-- c", "a --> b <-- c"),
        (r"a back\slash and 50% of $5", r"a back\slash and 50% of $5"),
    ],
)
def test_every_math_delimiter_and_tex_dash_reads_as_text(written: str, shown: str):
    from digest.text import readable

    assert readable(written) == shown


@pytest.mark.parametrize(
    "topics",
    [
        ("recommender systems", "graph neural networks"),  # the fold fell right after "networks "
        ("graph neural networks", "Erdős–Rényi graphs"),
        ("日本語の論文", "ニューラルネットワーク"),
        ("emoji 🧪 tests and a very long interest that makes the subject wrap twice at least",),
    ],
)
def test_a_non_ascii_subject_reads_back_exactly_with_single_spaces_and_short_lines(topics):
    smtp = Settings.load(env={}).smtp
    papers = [replace(_ranked(), matched=(t,)) for t in topics for _ in range(2)]
    digest = render.render(SUB, DAY, papers, LINKS)
    outgoing = serialize(build_message(digest, smtp), smtp, key="k")
    head = outgoing.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and max(len(line) for line in head.split(b"\r\n")) <= 78
    parsed = message_from_bytes(outgoing.data, policy=policy.default)
    assert parsed["Subject"] == digest.subject and "  " not in digest.subject
    raw_subject = re.search(rb"Subject: (.*?)\r\n(?! )", head + b"\r\n", re.S)
    assert raw_subject is not None
    strict = str(make_header(decode_header(raw_subject.group(1).decode("ascii").replace("\r\n", ""))))
    assert strict == digest.subject  # as a client that follows RFC 2047 reads it


def test_a_why_line_is_one_sentence_of_at_most_two_reasons_whatever_applies():
    long_title = "A Very Long Title of One of the Reader's Own Papers That Goes On and On About Graphs"
    ranked = replace(
        _ranked(),
        matched=("diffusion models", "image generation", "sampling"),
        close_to=long_title,
        liked_like="Another Paper",
    )
    why = render.why_line(ranked)
    assert why == (
        "It matches your interests “diffusion models” and “image generation”,"
        " and is close to your paper “A Very Long Title of One of the Reader's Own Papers That…”."
    )
    assert why.count(".") == 1 and len(why) < 200


def test_a_phrase_from_the_readers_papers_is_never_called_their_interest():
    ranked = replace(_ranked(), matched=(), from_papers=("contrastive emotion representation learning",))
    digest = render.render(replace(SUB, keywords=(), profile_papers=("papers.bib",)), DAY, [ranked], LINKS)
    why = "It is like your papers on “contrastive emotion representation learning”."
    assert render.why_line(ranked) == why and why in digest.text
    assert "interest" not in render.why_line(ranked)
    assert "contrastive emotion" not in digest.subject and "close to your papers" in digest.subject
    assert "close to your own papers" in digest.text.split("\n\n")[1]


def test_the_subject_uses_only_the_readers_own_words():
    picks = [_ranked(), replace(_ranked(), matched=(), from_papers=("emotion recognition",))]
    subject = render.subject_for(picks, DAY)
    assert subject.startswith("2 new papers on diffusion models —") and "emotion" not in subject


def test_the_footer_says_why_the_mail_comes_and_what_to_do_never_a_file():
    links = Links(
        "mailto:digest@localhost?subject=unsubscribe%20alice",
        unsubscribe_https="https://d.example.org/unsubscribe?t=u",
        archive="https://d.example.org/archive/2026-11-19/alice?t=a",
        feedback={"2511.00001": ("https://d.example.org/feedback?t=m", "https://d.example.org/feedback?t=l")},
    )
    reader = replace(SUB, profile_papers=("mine.bib",))
    digest = render.render(reader, DAY, [_ranked()], links)
    for part in (digest.text, digest.html):
        assert "subscribers.yaml" not in part and ".yaml" not in part
        assert "alice@example.org" in part and "your interests (diffusion models)" in part
        assert "your own papers" in part and "reply to this email" in part
    assert "teach it what you want" in digest.text
    assert "teach it what you want" not in render.render(SUB, DAY, [_ranked()], LINKS).text  # no votes

"""The pure renderers: escaping, cutting, the stage strip, durations."""

from bot.core import render


def test_escape_turns_every_control_character_into_an_entity():
    assert render.escape("<!channel> & <@U1> > x") == "&lt;!channel&gt; &amp; &lt;@U1&gt; &gt; x"


def test_cut_never_leaves_half_an_entity():
    text = render.escape("a&&&&")  # a&amp;&amp;&amp;&amp;
    assert render.cut(text, 8) == "a&amp;…"
    assert render.cut(text, 100) == text


def test_stage_strip_shows_ci_then_each_stage_and_its_lock():
    stages = [("pasty", "success"), ("baklava", "in_progress"), ("dumpling", None)]
    assert render.stage_strip("success", stages, locked={"dumpling"}) == (
        "CI ✅ → pasty ✅ → baklava ⏳ → dumpling · 🔒"
    )
    assert render.stage_strip("failure", [("pasty", "error")]) == "CI ❌ → pasty ❌"


def test_people_are_mentioned_by_id_and_logins_are_escaped():
    assert render.person("U012ABC") == "<@U012ABC>"
    assert render.person("octo<cat>") == "octo&lt;cat&gt;"


def test_durations_read_like_a_person_would_say_them():
    assert [render.duration(s) for s in (45, 192, 3900, None)] == [
        "45s",
        "3m 12s",
        "1h 05m",
        "an unknown time",
    ]


def test_a_link_only_to_http_and_with_its_bar_escaped():
    assert render.link("https://x.example/a|b&c", "l") == "<https://x.example/a%7Cb&amp;c|l>"
    assert render.link("javascript:alert(1)", "l") == "l"
    assert render.link(None, "l") == "l"


def test_promotion_news_covers_rollbacks_and_expiry_and_skips_the_rest():
    rollback = render.promotion_changed(4, "dumpling", "approved", "U0ABC", rollback=True)
    assert rollback and rollback[0] == "↩️ <@U0ABC> is rolling *dumpling* back to build #4."
    expired = render.promotion_changed(4, "dumpling", "expired", None)
    assert expired and expired[0] == "⌛ The request to promote build #4 to *dumpling* expired."
    assert render.promotion_changed(4, "dumpling", "superseded", "U1") is None

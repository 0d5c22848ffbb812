"""The pure renderers: escaping, cutting, the stage strip, durations."""

from bot.core import render, text


def test_escape_turns_every_control_character_into_an_entity():
    assert text.escape("<!channel> & <@U1> > x") == "&lt;!channel&gt; &amp; &lt;@U1&gt; &gt; x"


def test_cut_never_leaves_half_an_entity():
    escaped = text.escape("a&&&&")  # a&amp;&amp;&amp;&amp;
    assert render.cut(escaped, 8) == "a&amp;…"
    assert render.cut(escaped, 100) == escaped


def test_stage_strip_shows_ci_then_each_stage_and_its_lock():
    stages = [("pasty", "success"), ("baklava", "in_progress"), ("dumpling", None)]
    assert render.stage_strip("success", stages, locked={"dumpling"}) == (
        "CI ✅ → pasty ✅ → baklava ⏳ → dumpling · 🔒"
    )
    assert render.stage_strip("failure", [("pasty", "error")]) == "CI ❌ → pasty ❌"


def test_people_are_mentioned_by_id_and_logins_are_escaped():
    assert text.mention("U012ABC") == "<@U012ABC>"
    assert text.mention("S0PROMOTERS") == "<!subteam^S0PROMOTERS>"
    assert text.mention("octo<cat>") == "octo&lt;cat&gt;"
    assert text.mention(None) == "someone"


def test_durations_read_like_a_person_would_say_them():
    seconds = (0, 44.2, 45, 60, 61, 125, 192, 600, 725, 3600, 3900, 5400, 90000, 3 * 86400)
    assert [text.duration(s) for s in seconds] == [
        "0s",
        "45s",  # a part still running is rounded up: never "0s left" while time is left
        "45s",
        "1m",
        "1m 1s",
        "2m 5s",
        "3m 12s",
        "10m",
        "12m",
        "1h",
        "1h 5m",
        "1h 30m",
        "1d 1h",
        "3d",
    ]


def test_a_deployment_of_unknown_length_says_so():
    said, _ = render.deployment_finished("pasty", "success", None, None)
    assert said == "✅ Deployed to *pasty* in an unknown time."


def test_the_first_line_of_a_commit_message_skips_blank_lines():
    assert text.first_line("\n  Fix the index  \n\nBody") == "Fix the index"
    assert text.first_line(None) == ""


def test_a_moment_in_the_digest_zone_long_and_short():
    at = 1_764_147_600  # 2025-11-26 09:00 UTC
    assert text.when(at, "Europe/London") == "2025-11-26 09:00 GMT"
    assert text.when(at, "Europe/Berlin", short=True) == "Wed 10:00"


def test_a_link_only_to_http_and_with_its_bar_escaped():
    assert text.link("https://x.example/a|b&c", "l") == "<https://x.example/a%7Cb&amp;c|l>"
    assert text.link("javascript:alert(1)", "l") == "l"
    assert text.link(None, "l") == "l"


def test_promotion_news_covers_rollbacks_and_expiry_and_skips_the_rest():
    rollback = render.promotion_changed(4, "dumpling", "approved", "U0ABC", rollback=True)
    assert rollback and rollback[0] == "↩️ <@U0ABC> is rolling *dumpling* back to build #4."
    expired = render.promotion_changed(4, "dumpling", "expired", None)
    assert expired and expired[0] == "⌛ The request to promote build #4 to *dumpling* expired."
    assert render.promotion_changed(4, "dumpling", "superseded", "U1") is None

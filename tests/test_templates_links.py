"""Templates run sandboxed, strict and escaped; links are signed and purpose-bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from network_anim.compose.composer import sms_mention_problem
from network_anim.compose.links import BadToken, LinkSigner, load_secret
from network_anim.compose.rendering import TemplateStore
from network_anim.errors import UserError


def store(tmp_path: Path, files: dict[str, str]) -> TemplateStore:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return TemplateStore(tmp_path, "fr")


def test_html_is_autoescaped_text_is_not(tmp_path: Path) -> None:
    templates = store(
        tmp_path,
        {
            "email/t.fr.txt": "{% block subject %}{{ name }}{% endblock %}{% block body %}{{ name }}{% endblock %}",
            "email/t.fr.html": "<p>{{ name }}</p>",
        },
    )
    rendered = templates.render("email", "t", "fr", {"name": "<script>alert(1)</script> & Cie"})
    assert rendered.html == "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; Cie</p>"
    assert rendered.text.strip() == "<script>alert(1)</script> & Cie"


def test_sandbox_refuses_unsafe_attribute_access(tmp_path: Path) -> None:
    templates = store(
        tmp_path,
        {
            "sms/t.fr.txt": "{% block body %}{{ ''.__class__.__mro__[1].__subclasses__() }}{% endblock %}"
        },
    )
    with pytest.raises(UserError, match=r"refused by the sandbox: access to attribute '__class__'"):
        templates.render("sms", "t", "fr", {})


def test_language_falls_back_to_default(tmp_path: Path) -> None:
    templates = store(tmp_path, {"sms/t.fr.txt": "{% block body %}Bonjour{% endblock %}"})
    assert templates.render("sms", "t", "de", {}).text == "Bonjour\n"


def test_undefined_variable_names_template_line(tmp_path: Path) -> None:
    templates = store(
        tmp_path,
        {
            "print/t.fr.txt": "{% block subject %}Objet{% endblock %}\n{% block body %}\nA\nB {{ nope }}\n{% endblock %}"
        },
    )
    with pytest.raises(UserError) as info:
        templates.render("print", "t", "fr", {})
    assert info.value.summary.endswith("print/t.fr.txt:4: 'nope' is undefined")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Animation Réseau : promo -20 % ! STOP au 36180", None),
        ("Promo -20 % ! STOP au 36180", "sender's name"),
        ("Animation Réseau : promo -20 %", "STOP mention"),
        ("Animation Réseau : promo, stopper la vente", "STOP mention"),
    ],
)
def test_promotional_sms_mentions(text: str, problem: str | None) -> None:
    found = sms_mention_problem(text, "Animation Réseau")
    assert (found is None) if problem is None else (problem in (found or ""))


def test_tokens_are_signed_and_bound_to_their_purpose() -> None:
    signer = LinkSigner(b"s" * 32, "https://portal.example/")
    url = signer.post_url(12, 345)
    assert url.startswith("https://portal.example/p/")
    token = url.rsplit("/", 1)[1]
    assert signer.verify("post", token) == [12, 345]
    with pytest.raises(BadToken):
        signer.verify("unsubscribe", token)
    payload, mac = token.split(".")
    forged = LinkSigner(b"x" * 32, "https://portal.example").sign("post", [12, 346]).split(".")[0]
    with pytest.raises(BadToken):
        signer.verify("post", f"{forged}.{mac}")
    with pytest.raises(BadToken):
        signer.verify("post", f"{payload}.{mac[:-2]}AA")
    with pytest.raises(BadToken):
        signer.verify("post", "garbage")
    assert len(token) < 40  # short enough for an SMS


def test_secret_comes_from_env_or_a_generated_private_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NETANIM_TEST_SECRET", raising=False)
    first = load_secret("NETANIM_TEST_SECRET", tmp_path)
    assert load_secret("NETANIM_TEST_SECRET", tmp_path) == first
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("NETANIM_TEST_SECRET", "e" * 40)
    assert load_secret("NETANIM_TEST_SECRET", tmp_path) == b"e" * 40
    monkeypatch.setenv("NETANIM_TEST_SECRET", "short")
    with pytest.raises(UserError, match="too short"):
        load_secret("NETANIM_TEST_SECRET", tmp_path)

"""Sales declared on the portal, over both databases: the rules of ``netanim import sales``
with the import's own messages (and their French), the proof file, withdrawal, CSRF, level
and registration checks, the manager's review with ``netanim challenge claims``; then the
whole story in Chromium: declare with a proof PDF, approved with the CLI, points and a
higher rank, a duplicate invoice refused."""

from __future__ import annotations

import html
import json
import re
import string
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from network_anim.app import App
from network_anim.challenges.awarding import review
from network_anim.challenges.declarations import declare, safe_filename
from network_anim.challenges.registration import register
from network_anim.challenges.sales_csv import parse_sales_csv
from network_anim.challenges.sales_import import sales_context
from network_anim.challenges.sales_rules import MESSAGES
from network_anim.challenges.upkeep import sync_challenges
from network_anim.clock import SimulatedClock
from network_anim.db.models import Contact, Sale, SaleProof
from network_anim.errors import UserError
from network_anim.web.portal import auth
from tests.test_portal import Portal, portal  # noqa: F401 (fixture)
from tests.test_portal_e2e import CHROMIUM, playwright_api, served  # noqa: F401 (fixture)
from tests.test_sales_import import clock_cli  # noqa: F401 (fixture)

# Within pbx-2027 (2027-01-04 to 2027-04-30, approval = true): 11:00 in Paris.
IN_THE_CHALLENGE = datetime(2027, 2, 15, 10, 0, tzinfo=UTC)
PAGE = "/portal/challenges/pbx-2027/sales"
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
GOOD = {
    "sold_at": "2027-02-10",
    "sku": "PBX-S80",
    "quantity": "2",
    "amount": "4800",
    "invoice_ref": "F-2027-0042",
}


def contact(app: App, external_id: str) -> Contact:
    with Session(app.engine) as session:
        row = session.scalars(select(Contact).where(Contact.external_id == external_id)).one()
        session.expunge(row)
        return row


def enter(app: App, *external_ids: str) -> None:
    """Register contacts to pbx-2027 (registration is required there)."""
    sync_challenges(app)
    challenge = app.config.challenge("pbx-2027")
    with Session(app.engine) as session, session.begin():
        found = session.scalars(select(Contact).where(Contact.external_id.in_(external_ids))).all()  # type: ignore[attr-defined]
        register(app, session, challenge, list(found), via="cli")


def sales(app: App) -> list[tuple]:
    with Session(app.engine) as session:
        return list(
            session.execute(
                select(Sale.invoice_ref, Sale.status, Sale.source, Sale.declared_by).order_by(
                    Sale.id
                )
            )
        )


def problems(page: str) -> list[str]:
    block = re.search(r'<ul class="error" id="problems">(.*?)</ul>', page, re.S)
    assert block, page[-2000:]
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", block.group(1), re.S)]


@pytest.fixture
def seller(portal: Portal, clock: SimulatedClock) -> Portal:  # noqa: F811
    clock.set(IN_THE_CHALLENGE)
    enter(portal.app, "C0002")
    return portal


async def post_sale(
    portal: Portal,  # noqa: F811
    csrf: str,
    *,
    proof: tuple[str, bytes, str] | None = None,
    **changes: str,
):  # type: ignore[no-untyped-def]
    files = {"proof": proof} if proof else None
    return await portal.client.post(PAGE, data={"csrf": csrf, **GOOD, **changes}, files=files)


# -- declaring ---------------------------------------------------------------------------------


async def test_declared_sale_with_proof_is_pending_and_listed(seller: Portal) -> None:
    csrf = await seller.sign_in("C0002")
    page = await seller.client.get(PAGE)
    assert page.status_code == 200
    # The config's catalogue, by family.
    assert '<optgroup label="pbx">' in page.text
    assert '<option value="PBX-S80">Standard IP S80 (PBX-S80)</option>' in page.text
    assert 'id="no-declarations"' in page.text

    done = await post_sale(
        seller, csrf, proof=("../../Facture été n°42.pdf", PDF, "application/pdf")
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"{PAGE}?declared=")
    assert sales(seller.app) == [("F-2027-0042", "pending", "portal", "portal:C0002")]

    page = await seller.client.get(done.headers["location"])
    assert 'id="declared"' in page.text
    row = re.search(r'<tr data-sale="\d+" data-invoice="F-2027-0042">(.*?)</tr>', page.text, re.S)
    assert row, page.text
    assert "<td>10/02/2027</td>" in row.group(1)  # the day declared, in Paris
    assert "En attente" in row.group(1) and "(Facture_ete_n42.pdf)" in row.group(1)
    assert 'class="withdraw"' in row.group(1)

    with Session(seller.app.engine) as session:
        proof = session.scalars(select(SaleProof)).one()
    assert (proof.filename, proof.content_type, proof.size) == (
        "Facture_ete_n42.pdf",
        "application/pdf",
        len(PDF),
    )
    stored = seller.app.data_dir / "attachments" / proof.sha256
    assert stored.read_bytes() == PDF
    # Never served on the portal: no link to it, no route.
    assert proof.sha256 not in page.text and "/files/" not in page.text


async def test_english_page(seller: Portal) -> None:
    csrf = await seller.sign_in("C0002")
    await seller.client.get("/portal/lang/en")
    assert (await post_sale(seller, csrf)).status_code == 303
    page = await seller.client.get(PAGE)
    assert "Declare a sale" in page.text and ">Pending" in page.text


def test_safe_file_names() -> None:
    assert safe_filename("C:\\Users\\moi\\Scan facture.PDF") == "Scan_facture.PDF"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("<script>.pdf") == "script_.pdf"
    assert safe_filename("…") == "proof"


async def test_proof_must_be_pdf_jpeg_or_png(seller: Portal) -> None:
    csrf = await seller.sign_in("C0002")
    answer = await post_sale(seller, csrf, proof=("facture.pdf", b"MZ\x90\x00", "application/pdf"))
    assert answer.status_code == 422
    assert problems(answer.text) == [
        "le justificatif facture.pdf n'est pas un fichier PDF, JPEG ou PNG ; "
        "numérisez la facture dans l'un de ces formats"
    ]
    # A PNG sent as "invoice.pdf" is stored as what it is.
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    answer = await post_sale(seller, csrf, proof=("invoice.pdf", png, "application/pdf"))
    assert answer.status_code == 303
    with Session(seller.app.engine) as session:
        stored = session.scalars(select(SaleProof)).one()
    assert (stored.filename, stored.content_type) == ("invoice.png", "image/png")


# -- every rule of the import, its message in English and in French ----------------------------

RULES = [
    pytest.param(
        {"sku": "PBX-S99"},
        "sku 'PBX-S99' is not a known product (did you mean PBX-S80, PBX-S40?)",
        "sku 'PBX-S99' n'est pas un produit connu (vouliez-vous dire PBX-S80, PBX-S40 ?)",
        id="unknown-sku",
    ),
    pytest.param(
        {"sku": "PBX-S40", "quantity": "1", "amount": "125000"},
        "amount 125000.00 is too high: more than 10 x quantity x unit price "
        "(1 x 1250.00 = 1250.00 EUR); check it is in EUR excluding VAT (not cents) and the "
        "quantity",
        "amount 125000.00 est trop élevé : plus de 10 x quantité x prix unitaire "
        "(1 x 1250.00 = 1250.00 EUR) ; vérifiez qu'il est en euros hors taxes (pas en "
        "centimes) et vérifiez la quantité",
        id="absurd-high",
    ),
    pytest.param(
        {"sku": "PBX-S40", "quantity": "1", "amount": "10"},
        "amount 10.00 is too low: less than 1 % of quantity x unit price "
        "(1 x 1250.00 = 1250.00 EUR); the amount is the line total in EUR (not thousands), "
        "check it and the quantity",
        "amount 10.00 est trop bas : moins de 1 % de quantité x prix unitaire "
        "(1 x 1250.00 = 1250.00 EUR) ; le montant est le total de la ligne en euros (pas en "
        "milliers), vérifiez-le ainsi que la quantité",
        id="absurd-low",
    ),
    pytest.param(
        {"sold_at": "2027-02-16"},
        "sold_at 2027-02-16 is in the future (now is 2027-02-15 11:00 Europe/Paris); "
        "declare a sale once it is made",
        "sold_at 2027-02-16 est dans le futur (il est 2027-02-15 11:00 Europe/Paris) ; "
        "déclarez une vente une fois qu'elle est faite",
        id="future",
    ),
    pytest.param(
        {"sold_at": "2027-01-03"},
        "sold_at 2027-01-03 is outside challenge pbx-2027 (2027-01-04 to 2027-04-30); "
        "correct the date",
        "sold_at 2027-01-03 est en dehors du challenge pbx-2027 (2027-01-04 au 2027-04-30) ; "
        "corrigez la date",
        id="outside-period",
    ),
    pytest.param(
        {"quantity": "deux"},
        "quantity 'deux' is not a number (write it like 12 or 1250.50)",
        "quantity 'deux' n'est pas un nombre (écrivez-le comme 12 ou 1250,50)",
        id="not-a-number",
    ),
    pytest.param(
        {"amount": "-4800"},
        "amount -4800 is not positive; it must be more than 0",
        "amount -4800 n'est pas positif ; il doit être supérieur à 0",
        id="not-positive",
    ),
    pytest.param(
        {"invoice_ref": ""},
        "invoice_ref is empty; it is required",
        "invoice_ref est vide ; il est obligatoire",
        id="empty",
    ),
]


def import_message(app: App, changes: dict[str, str]) -> str:
    """What ``netanim import sales --challenge pbx-2027`` says of the same sale."""
    cells = {**GOOD, **changes}
    text = (
        "invoice_ref;contact_id;sku;quantity;amount;sold_at\n"
        f"{cells['invoice_ref']};C0002;{cells['sku']};{cells['quantity']};{cells['amount']};"
        f"{cells['sold_at']}\n"
    )
    with pytest.raises(UserError) as refused:
        parse_sales_csv(text, source="sales.csv", context=sales_context(app, challenge="pbx-2027"))
    (line,) = refused.value.problems
    return line.removeprefix("line 2: ")


@pytest.mark.parametrize(("changes", "english", "french"), RULES)
async def test_each_import_rule_with_its_message(
    seller: Portal, changes: dict[str, str], english: str, french: str
) -> None:
    csrf = await seller.sign_in("C0002")
    answer = await post_sale(seller, csrf, **changes)
    assert answer.status_code == 422
    assert problems(answer.text) == [french]
    if "invoice_ref" not in changes:  # the form keeps what was typed
        assert 'value="F-2027-0042"' in answer.text
    await seller.client.get("/portal/lang/en")
    answer = await post_sale(seller, csrf, **changes)
    assert problems(answer.text) == [english]
    assert sales(seller.app) == []
    # The same words as the import's, but for the remedy the import adds.
    assert import_message(seller.app, changes) == english.replace(
        "correct the date", "correct the date, or import it without --challenge"
    )


async def test_duplicate_invoice_gets_the_import_message(seller: Portal) -> None:
    csrf = await seller.sign_in("C0002")
    assert (await post_sale(seller, csrf)).status_code == 303
    with Session(seller.app.engine) as session:
        sale_id = session.scalar(select(Sale.id))
    english = (
        f"invoice_ref F-2027-0042 of company D001 is already recorded (sale #{sale_id} from "
        "portal); a sale is declared once"
    )
    answer = await post_sale(seller, csrf, quantity="1", amount="2400")
    assert answer.status_code == 422
    assert problems(answer.text) == [
        f"invoice_ref F-2027-0042 de la société D001 est déjà enregistrée (vente n° {sale_id} "
        "venant de portal) ; une vente se déclare une seule fois"
    ]
    await seller.client.get("/portal/lang/en")
    assert problems((await post_sale(seller, csrf)).text) == [english]
    assert import_message(seller.app, {}) == english
    assert len(sales(seller.app)) == 1


async def test_every_problem_of_a_declaration_is_listed(seller: Portal) -> None:
    csrf = await seller.sign_in("C0002")
    await seller.client.get("/portal/lang/en")
    answer = await post_sale(seller, csrf, quantity="0", sold_at="hier")
    assert problems(answer.text) == [
        "quantity 0 is not positive; it must be more than 0",
        "sold_at 'hier' is not an ISO date or date-time (write 2027-01-15 or 2027-01-15T14:30)",
    ]


def test_both_catalogues_say_the_same_things() -> None:
    def fields(text: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(text) if f}

    assert MESSAGES["fr"].keys() == MESSAGES["en"].keys()
    for key, english in MESSAGES["en"].items():
        assert fields(MESSAGES["fr"][key]) == fields(english), key


# -- who may declare ---------------------------------------------------------------------------


async def test_csrf_is_required(seller: Portal) -> None:
    await seller.sign_in("C0002")
    answer = await post_sale(seller, "0" * 64)
    assert answer.status_code == 403
    answer = await seller.client.post(PAGE, data=GOOD)
    assert answer.status_code == 403
    assert sales(seller.app) == []


async def test_only_participants_declare(portal: Portal, clock: SimulatedClock) -> None:  # noqa: F811
    clock.set(IN_THE_CHALLENGE)
    sync_challenges(portal.app)
    csrf = await portal.sign_in("C0007")
    page = await portal.client.get(PAGE)
    assert page.status_code == 403
    assert "Seuls les participants inscrits à ce challenge peuvent déclarer" in page.text
    assert 'id="declare"' not in page.text
    answer = await post_sale(portal, csrf)
    assert answer.status_code == 403 and 'id="not-registered"' in answer.text
    assert sales(portal.app) == []


@pytest.fixture
def director_challenge(config_path: Path) -> None:
    text = config_path.read_text(encoding="utf-8")
    assert 'level = "seller"                 # lowest' in text
    config_path.write_text(
        text.replace('level = "seller"                 # lowest', 'level = "director" # lowest'),
        encoding="utf-8",
    )


async def test_a_higher_level_challenge_is_403(
    director_challenge: None,
    portal: Portal,  # noqa: F811
    clock: SimulatedClock,
) -> None:
    clock.set(IN_THE_CHALLENGE)
    csrf = await portal.sign_in("C0002")
    assert (await portal.client.get(PAGE)).status_code == 403
    assert (await post_sale(portal, csrf)).status_code == 403
    assert sales(portal.app) == []


# -- withdrawing ------------------------------------------------------------------------------


async def test_withdraw_a_pending_declaration(seller: Portal) -> None:
    csrf = await seller.sign_in("C0002")
    await post_sale(seller, csrf)
    with Session(seller.app.engine) as session:
        sale_id = session.scalar(select(Sale.id))
    url = f"{PAGE}/{sale_id}/withdraw"
    assert (await seller.client.post(url, data={"csrf": "0" * 64})).status_code == 403
    assert sales(seller.app)[0][1] == "pending"

    done = await seller.client.post(url, data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"] == f"{PAGE}?withdrawn=1"
    assert sales(seller.app)[0][1] == "withdrawn"
    page = await seller.client.get(done.headers["location"])
    assert 'id="withdrawn"' in page.text and ">Retirée" in page.text
    assert 'class="withdraw"' not in page.text

    again = await seller.client.post(url, data={"csrf": csrf})
    assert again.status_code == 409 and 'id="not-withdrawn"' in again.text
    # The manager sees it no more.
    with pytest.raises(UserError, match=f"not pending: {sale_id}"):
        review(seller.app, [sale_id], approve=True)

    # Withdrawn to be corrected: the same invoice is declared again, and is then taken.
    fixed = await post_sale(seller, csrf, quantity="3", amount="7200")
    assert fixed.status_code == 303, fixed.text
    assert [(ref, status) for ref, status, _, _ in sales(seller.app)] == [
        ("F-2027-0042", "withdrawn"),
        ("F-2027-0042", "pending"),
    ]
    twice = await post_sale(seller, csrf)
    assert twice.status_code == 422
    assert "invoice_ref F-2027-0042 de la société" in twice.text


async def test_only_ones_own_pending_declaration_is_withdrawn(seller: Portal) -> None:
    enter(seller.app, "C0007")
    challenge = seller.app.config.challenge("pbx-2027")
    other = declare(seller.app, challenge, contact(seller.app, "C0007"), GOOD, None)
    mine = declare(seller.app, challenge, contact(seller.app, "C0002"), GOOD, None)
    review(seller.app, [mine], approve=True)
    csrf = await seller.sign_in("C0002")
    refused = await seller.client.post(f"{PAGE}/{other}/withdraw", data={"csrf": csrf})
    assert refused.status_code == 404
    refused = await seller.client.post(f"{PAGE}/{mine}/withdraw", data={"csrf": csrf})
    assert refused.status_code == 409
    assert [status for _, status, _, _ in sales(seller.app)] == ["pending", "approved"]


# -- the manager's review ----------------------------------------------------------------------


async def test_claims_lists_portal_declarations_and_reviews_them(
    seller: Portal,
    clock_cli,  # noqa: F811
    config_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    csrf = await seller.sign_in("C0002")
    await post_sale(seller, csrf, proof=("facture.pdf", PDF, "application/pdf"))
    await post_sale(seller, csrf, invoice_ref="F-2027-0043", sku="DECT-D12", amount="178")
    listed = clock_cli("challenge", "claims", "pbx-2027", "-c", str(config_path), "--json")
    assert listed.code == 0, listed
    first, second = json.loads(listed.out)
    with Session(seller.app.engine) as session:
        digest = session.scalar(select(SaleProof.sha256))
    assert (first["invoice"], first["source"], first["proof_name"]) == (
        "F-2027-0042",
        "portal",
        "facture.pdf",
    )
    assert first["proof"] == str(seller.app.data_dir / "attachments" / str(digest))
    assert (second["source"], second["proof"]) == ("portal", "")
    table = clock_cli("challenge", "claims", "pbx-2027", "-c", str(config_path))
    assert "facture.pdf: " in table.out and "portal" in table.out

    approved = clock_cli(
        "challenge", "claims", "pbx-2027", "--approve", str(first["id"]), "-c", str(config_path)
    )
    assert approved.code == 0 and "1 approved: 300 points credited" in approved.out, approved
    rejected = clock_cli(
        "challenge", "claims", "pbx-2027", "--reject", str(second["id"]),
        "--reason", "facture illisible", "-c", str(config_path),
    )  # fmt: skip
    assert rejected.code == 0, rejected
    page = (await seller.client.get(PAGE)).text
    assert re.search(r'data-status="approved">Validée · <span class="points">300</span>', page)
    assert 'data-status="rejected">Refusée · <span class="reason">facture illisible</span>' in page


# -- in a browser ------------------------------------------------------------------------------


@pytest.fixture
def browser_page(served: tuple[App, str]) -> Iterator[object]:  # noqa: F811
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed")
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield browser.new_page()
        browser.close()


def sign_in(page, app: App, base: str, external_id: str) -> None:  # type: ignore[no-untyped-def]
    """Through a magic link's confirmation page, as the login mail's link leads."""
    issued = auth.issue_login(app, contact(app, external_id).id or 0, "email")
    assert issued is not None
    page.goto(f"{base}/portal/login/{issued[1]}")
    page.click("#sign-in")
    page.wait_for_url(f"{base}/portal/")


def test_declare_approve_rank_in_a_browser(
    served: tuple[App, str],  # noqa: F811
    browser_page,  # type: ignore[no-untyped-def]
    clock_cli,  # type: ignore[no-untyped-def]  # noqa: F811
    clock: SimulatedClock,
    tmp_path: Path,
    artifacts_dir: Path,
) -> None:
    app, base = served
    app.clock.set(IN_THE_CHALLENGE)  # type: ignore[attr-defined]
    clock.set(IN_THE_CHALLENGE)  # the CLI's
    enter(app, "C0002", "C0007")
    # Another seller leads with one PBX S40 (150 points).
    challenge = app.config.challenge("pbx-2027")
    lead = {**GOOD, "sku": "PBX-S40", "quantity": "1", "amount": "1250", "invoice_ref": "N-1"}
    review(app, [declare(app, challenge, contact(app, "C0007"), lead, None)], approve=True)
    proof = tmp_path / "facture-0042.pdf"
    proof.write_bytes(PDF)

    page = browser_page
    sign_in(page, app, base, "C0002")
    page.goto(f"{base}/portal/challenges/pbx-2027")
    assert page.locator("#leaderboard tr.me td").first.inner_text() == "2"
    page.click("#declare-sales")
    page.wait_for_selector("#declare")
    page.fill("#sold_at", GOOD["sold_at"])
    page.select_option("#sku", "PBX-S80")
    page.fill("#quantity", "2")
    page.fill("#amount", "4800")
    page.fill("#invoice_ref", GOOD["invoice_ref"])
    page.set_input_files("#proof", str(proof))
    page.click("#submit-sale")
    page.wait_for_selector("#declared")
    row = page.locator('[data-invoice="F-2027-0042"]')
    assert row.locator(".status").inner_text() == "En attente"
    assert row.locator(".proof").inner_text() == "(facture-0042.pdf)"
    page.screenshot(path=str(artifacts_dir / "portal-declarations.png"), full_page=True)

    # The channel manager approves it with the CLI.
    config = str(tmp_path / "netanim.toml")
    listed = json.loads(clock_cli("challenge", "claims", "pbx-2027", "-c", config, "--json").out)
    (claim,) = listed
    assert claim["source"] == "portal" and claim["proof_name"] == "facture-0042.pdf"
    approved = clock_cli(
        "challenge", "claims", "pbx-2027", "--approve", str(claim["id"]), "-c", config
    )
    assert "1 approved: 300 points credited" in approved.out, approved

    page.reload()
    assert row.locator(".status").inner_text() == "Validée · 300 points"
    page.goto(f"{base}/portal/challenges/pbx-2027")
    assert page.locator("#leaderboard tr.me td").first.inner_text() == "1"
    assert int(page.locator("#my-points").inner_text()) >= 300

    # The same invoice again: the import's message.
    page.click("#declare-sales")
    page.fill("#sold_at", "2027-02-11")
    page.select_option("#sku", "DECT-D12")
    page.fill("#quantity", "1")
    page.fill("#amount", "89")
    page.fill("#invoice_ref", GOOD["invoice_ref"])
    page.click("#submit-sale")
    page.wait_for_selector("#problems")
    assert page.locator("#problems li").all_inner_texts() == [
        f"invoice_ref F-2027-0042 de la société D001 est déjà enregistrée (vente n° "
        f"{claim['id']} venant de portal) ; une vente se déclare une seule fois"
    ]
    with Session(app.engine) as session:
        assert [s.invoice_ref for s in session.scalars(select(Sale).order_by(Sale.id))] == [
            "N-1",
            "F-2027-0042",
        ]

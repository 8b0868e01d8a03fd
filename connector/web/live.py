"""The Webhook Live View: server-rendered pages under /live that refresh themselves, with
charts of the last hour, day or week (`overview.py`, drawn by `charts.py`) above the events.

Each page has a `?partial=1` form returning only its live region; static/live.js polls it and
swaps it in when it changed, so rendering (and HTML escaping) happens in one place: Jinja.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from urllib.parse import urlencode

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from connector.contract import STATES
from connector.outbox import intake
from connector.web import access, admin, arguments, charts, overview, readmodel, story
from connector.web.refusals import MAX_KEPT

bp = Blueprint(
    "live",
    __name__,
    url_prefix="/live",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
PUBLIC = {"live.login", "live.login_post", "live.static"}
_NEXT = re.compile(r"/live(?:/[\w/-]*)?(?:\?[!-\[\]-~]*)?", re.ASCII)  # no backslash, no ".."
#: The dashboard says how many inbound requests were refused in this many seconds.
REFUSED_WINDOW = 3600.0
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _partial() -> bool:
    return request.args.get("partial") == "1"


@bp.before_request
def _guard():
    if request.endpoint in PUBLIC:
        return None
    refused = access.refusal()
    if refused is None:
        return None
    message, status = refused
    browsing = (
        status == 401
        and request.method == "GET"
        and not _partial()
        and "Authorization" not in request.headers
    )
    if browsing:
        return redirect(url_for("live.login", next=request.full_path.rstrip("?")))
    return render_template("live/refused.html", message=message), status


@bp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = CSP
    return access.secure_headers(response)


@bp.app_template_filter("short_time")
def short_time(iso: str | None) -> str:
    """'2026-11-22T05:44:22.123Z' → '11-22 05:44:22' (UTC; the full time is in the title)."""
    return f"{iso[5:10]} {iso[11:19]}" if iso else ""


@bp.app_template_filter("chart_part")
def chart_part(value: float | None, series: str) -> dict:
    """One slot's bar for a single-series chart: {series: value}, or nothing to draw."""
    return {series: value} if value else {}


@bp.app_template_filter("pretty")
def pretty(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False)


@bp.app_context_processor
def _template_globals():
    browser = g.get("admin_via") == "session"
    return {
        "csrf_token": access.csrf_token if browser else None,
        "OUTCOMES": STATES,
        "CHART_OUTCOMES": overview.OUTCOMES,
        "WINDOWS": overview.WINDOWS,
        "chart": charts.chart,
    }


# -- login ------------------------------------------------------------------------------------
def _safe_next(target: str | None) -> str:
    """Only a path inside the Live View, never another site (nor a header injection)."""
    if target and len(target) <= 2000 and _NEXT.fullmatch(target):
        return target
    return url_for("live.dashboard")


@bp.get("/login")
def login():
    return render_template(
        "live/login.html", next=_safe_next(request.args.get("next")), disabled=access.admin_token() is None
    )


@bp.post("/login")
def login_post():
    token = access.admin_token()
    given = request.form.get("token", "")
    target = _safe_next(request.form.get("next"))
    if token is None or not hmac.compare_digest(given.encode(), token.encode()):
        current_app.logger.warning("Live View login refused")
        return render_template(
            "live/login.html", next=target, disabled=token is None, error="That is not the admin token."
        ), 401
    access.sign_in()
    return redirect(target)


@bp.post("/logout")
def logout():
    """Ends the session in the store: a copy of the cookie opens nothing afterwards."""
    access.sign_out()
    return redirect(url_for("live.login"))


# -- the list ---------------------------------------------------------------------------------
@bp.get("")
def dashboard():
    runtime = current_app.extensions["connector"]
    try:
        filters, before, limit = arguments.listing(request)
    except arguments.ArgumentError as exc:
        return render_template("live/refused.html", message=str(exc)), 400
    if "story" in request.args:  # the consent story lookup box: on to that person's page
        return _to_story()
    window = request.args.get("window") or overview.DEFAULT_WINDOW
    if window not in overview.WINDOWS:
        return render_template(
            "live/refused.html", message=f"window: one of {', '.join(overview.WINDOWS)}"
        ), 400
    page = readmodel.recent_events(runtime.engine, filters, before, limit)
    pull_sources = readmodel.pull_sources(runtime.engine, sorted(runtime.config.pull_sources))
    shown = overview.DEFAULT_WINDOW if window == overview.DEFAULT_WINDOW else window
    context = {
        "filters": filters,
        "window": shown,
        "page": page,
        "counts": readmodel.outcome_counts(runtime.engine, filters),
        "breakers": readmodel.breakers(runtime.engine),
        "waiting_to_plan": intake.waiting_count(runtime.engine),
        "refused_lately": current_app.extensions["refusals"].count_since(time.time() - REFUSED_WINDOW),
        "pull_sources": pull_sources,
        "overview": overview.overview(runtime.engine, window, filters.partner, pull_sources),
        "older_url": _url(filters, window, before=page["next_before"], limit=limit)
        if page["next_before"]
        else None,
        "newest_url": _url(filters, window, limit=limit) if before else None,
        "outcome_url": lambda outcome: _url(filters, window, outcome=outcome),
        "window_url": lambda choice: _url(filters, choice),
        "sources": sorted(runtime.config.all_sources),
        "partners": sorted(runtime.config.partners),
    }
    template = "live/_feed.html" if _partial() else "live/dashboard.html"
    return render_template(template, **context)


def _url(filters: readmodel.Filters, window: str, **changes) -> str:
    args = filters.as_args() | {k: v for k, v in changes.items() if v is not None}
    if window != overview.DEFAULT_WINDOW:
        args["window"] = window
    if changes.get("limit") == readmodel.DEFAULT_PAGE:
        args.pop("limit")
    if "outcome" in changes and changes["outcome"] is None:
        args.pop("outcome", None)
    query = urlencode(args)
    return url_for("live.dashboard") + (f"?{query}" if query else "")


# -- refused inbound requests -----------------------------------------------------------------
@bp.get("/refusals")
def refusals():
    log = current_app.extensions["refusals"]
    template = "live/_refusals.html" if _partial() else "live/refusals.html"
    return render_template(template, refusals=log.recent(), kept=MAX_KEPT)


# -- one event --------------------------------------------------------------------------------
@bp.get("/events/<int:event_pk>")
def event(event_pk: int):
    runtime = current_app.extensions["connector"]
    found = (
        readmodel.event_detail(runtime.engine, event_pk, runtime.redactor)
        if event_pk <= access.MAX_ID
        else None
    )
    if found is None:
        return render_template("live/refused.html", message=f"No event {event_pk}."), 404
    template = "live/_deliveries.html" if _partial() else "live/event.html"
    return render_template(template, event=found, breakers=readmodel.breakers(runtime.engine))


# -- one person's consent story ----------------------------------------------------------------
def _to_story():
    try:
        whom = story.parse_address(arguments.story(request)["story"] or "")
    except (story.AddressError, arguments.ArgumentError) as exc:
        return render_template("live/refused.html", message=str(exc)), 400
    return redirect(url_for("live.contact", address=whom.value))


@bp.get("/contacts/<address>")
def contact(address: str):
    """A snapshot (it does not refresh itself: each load reads every partner again): the story
    from the store beside what each partner holds now."""
    runtime = current_app.extensions["connector"]
    try:
        whom = story.parse_address(address)
        live = arguments.story(request)["live"]
    except (story.AddressError, arguments.ArgumentError) as exc:
        return render_template("live/refused.html", message=str(exc)), 400
    return render_template("live/contact.html", story=story.story(runtime, whom, live=live))


@bp.post("/deliveries/<int:delivery_id>/replay")
def replay_one(delivery_id: int):
    runtime = current_app.extensions["connector"]
    event_pk = (
        readmodel.delivery_event_pk(runtime.engine, delivery_id) if delivery_id <= access.MAX_ID else None
    )
    if event_pk is None:
        return render_template("live/refused.html", message=f"No delivery {delivery_id}."), 404
    counts = admin.replay_deliveries(delivery_ids=[delivery_id])
    if counts["queued"]:
        flash(f"Delivery {delivery_id} queued again.", "ok")
    elif counts["superseded"]:
        flash(
            f"Delivery {delivery_id} not replayed: a newer event for this contact exists, "
            "so it is superseded.",
            "warn",
        )
    else:
        flash(
            f"Delivery {delivery_id} not replayed: it is still pending, or would still be "
            "skipped with the current configuration.",
            "warn",
        )
    return redirect(url_for("live.event", event_pk=event_pk))

"""Heuristic rules, continued: plans and tiers, account events and complaints,
intents, life context, and dated first-person events.

See :mod:`memory_core.extraction.rules` for the conventions.
"""

from __future__ import annotations

import re

from memory_core.extraction.dates import DATE_WORDS, find_dates, resolve_dates
from memory_core.extraction.rules import (
    Finding,
    Sentence,
    strip_lead,
    third_person,
    triggered,
    when,
)
from memory_core.models import ObservationKind as K

__all__ = [
    "account_events",
    "dated_event",
    "intents",
    "life_context",
    "plan",
]

_F = re.IGNORECASE
_I = r"(?:^|(?<=[\s,;:(\"']))"

# -- plans and tiers ---------------------------------------------------------------------

_PLAN_WORDS = (
    r"basic|standard|premium|pro|plus|family|unlimited|business|enterprise|starter|essentials?|"
    r"advanced|ultimate|max|lite|free|student|prepaid|postpaid|gold|silver|platinum|bronze|"
    r"diamond|elite|vip"
)
_PLAN_NAME = (
    rf"(?P<plan>(?:[A-Z][\w+-]*|{_PLAN_WORDS})(?:\s+(?:[A-Z0-9][\w+-]*|\d+\s?(?:GB|Mbps|G)))?)"
)
_PLAN_NOUN = r"(?:plan|tier|package|subscription|membership|bundle|account)"
_ON_PLAN = tuple(
    re.compile(pattern)
    for pattern in (
        rf"{_I}I(?:'m|\s+am)\s+(?:currently\s+|still\s+|now\s+)?(?:on|subscribed\s+to|signed\s+"
        rf"up\s+for)\s+(?:the|a|your)\s+{_PLAN_NAME}\s+{_PLAN_NOUN}\b",
        rf"{_I}I\s+(?:have|pay\s+for|'ve\s+got|got)\s+(?:the|a|your)\s+{_PLAN_NAME}\s+"
        rf"{_PLAN_NOUN}\b",
        rf"\bmy\s+(?:current\s+)?(?:plan|package|subscription|tier)\s+is\s+(?:the\s+)?"
        rf"{_PLAN_NAME}\b",
        rf"{_I}I(?:'ve|\s+have)?\s+(?:just\s+|recently\s+|already\s+|finally\s+)?(?:signed\s+up\s+"
        rf"(?:for|to)|subscribed\s+to|joined|bought|purchased|switched\s+over\s+to)\s+(?:the|a)\s+"
        rf"{_PLAN_NAME}\s+{_PLAN_NOUN}\b",
    )
)
_CHANGED_PLAN = re.compile(
    rf"{_I}I(?:'ve|\s+have)?\s+(?:just\s+|recently\s+|already\s+)?(?:upgraded|downgraded|"
    rf"switched|changed|moved)\s+(?:my\s+(?:plan|account|subscription|package)\s+)?(?:from\s+"
    rf"(?:the\s+)?\w+(?:\s+{_PLAN_NOUN})?\s+)?to\s+(?:the\s+)?{_PLAN_NAME}(?P<noun>\s+{_PLAN_NOUN})?\b",
)
_WANT_PLAN = re.compile(
    rf"{_I}I(?:'d|\s+would)?\s+(?:want|like|need|am\s+thinking\s+(?:of|about)|'m\s+thinking\s+"
    rf"(?:of|about)|plan)\s+(?:to\s+)?(?P<verb>upgrad|downgrad|switch|chang)\w*\s+(?:my\s+\w+\s+)?"
    rf"to\s+(?:the\s+)?{_PLAN_NAME}(?:\s+{_PLAN_NOUN})?\b",
)
_MEMBER = re.compile(
    rf"{_I}I(?:'m|\s+am)\s+(?:a|an)\s+(?P<plan>{_PLAN_WORDS})\s+(?:member|customer|subscriber|"
    rf"status\s+member)\b",
    _F,
)
_KNOWN_PLAN = re.compile(rf"^(?:{_PLAN_WORDS})$", _F)


def _plan_name(m: re.Match[str]) -> str | None:
    name = " ".join(m.group("plan").split())
    first = name.split()[0]
    if not (first[0].isupper() or _KNOWN_PLAN.match(first)):
        return None
    if first.lower() in {"i", "the", "a", "my", "new", "same", "other", "old", "current"}:
        return None
    return " ".join(
        w if any(c.isdigit() for c in w) or w.isupper() else w.title() for w in name.split()
    )


@triggered(
    "plan tier package subscription membership bundle account member customer subscriber "
    "upgraded downgraded switched changed moved upgrade downgrade switch change signed joined "
    "subscribed bought purchased"
)
def plan(s: Sentence) -> list[Finding]:
    """ "I'm on the Premium plan" -> Is on the Premium plan (plan=Premium)."""
    if s.hypothetical:
        return []
    if (m := _WANT_PLAN.search(s.text)) and (name := _plan_name(m)):
        verb = {
            "upgrad": "upgrade",
            "downgrad": "downgrade",
            "switch": "switch",
            "chang": "switch",
        }[m.group("verb").lower()]
        return [
            Finding(
                "plan-intent",
                K.INTENT,
                f"Wants to {verb} to the {name} plan",
                0.8,
                "intent:plan_change",
                name,
            )
        ]
    if s.is_question:
        return []
    m = _CHANGED_PLAN.search(s.text)
    if m and (name := _plan_name(m)) and (m.group("noun") or _KNOWN_PLAN.match(name.split()[0])):
        said = re.search(r"upgraded|downgraded|switched|changed|moved", m.group(), _F)
        how = said.group().lower() if said else "switched"
        how = "switched" if how in ("changed", "moved") else how
        return [
            Finding(
                "plan-change",
                K.FACT,
                f"Is on the {name} plan ({how}{when(s)})",
                0.85,
                "plan",
                name,
                (("plan", name),),
            )
        ]
    m = next((found for p in _ON_PLAN if (found := p.search(s.text))), None)
    if m and (name := _plan_name(m)):
        return [
            Finding("plan", K.FACT, f"Is on the {name} plan", 0.85, "plan", name, (("plan", name),))
        ]
    if m := _MEMBER.search(s.text):
        tier = m.group("plan").title()
        return [
            Finding("tier", K.FACT, f"Is a {tier} member", 0.8, "tier", tier, (("tier", tier),))
        ]
    return []


# -- account events and complaints -------------------------------------------------------

_BILL = re.compile(
    r"\b(?P<prep>on|in|for|from)\s+(?P<what>(?:my|the|this|last|their)\s+(?:[\w-]+\s+){0,3}?"
    r"(?:invoice|bill|statement|card|order|payment|account|plan|subscription))\b",
    _F,
)
_DOUBLE = re.compile(
    r"\b(?:(?:double|twice)[- ](?:charged|billed)|(?:charged|billed)\s+(?:me\s+)?(?:twice|two\s+"
    r"times|double)|duplicate\s+(?:charge|payment|transaction)|charged\s+for\s+the\s+same\s+\w+"
    r"\s+twice|two\s+charges\s+for)\b",
    _F,
)
_FEE = re.compile(
    r"\b(?:a|an|the|this|that)\s+(?P<fee>(?:[\w-]+\s+){0,2}?(?:fee|charge|surcharge))\s+"
    r"(?:on|in)\s+my\s+(?P<bill>bill|invoice|statement)\b",
    _F,
)
_OVERCHARGED = re.compile(
    r"\b(?:overcharged|charged\s+(?:me\s+)?too\s+much|wrong\s+amount|unexpected\s+(?:fee|charge))",
    _F,
)
_REFUND = re.compile(
    r"\b(?:I(?:\s+want|\s+would\s+like|'d\s+like|\s+need|\s+am\s+asking\s+for|'m\s+asking\s+for|"
    r"\s+demand|\s+expect)|can\s+I\s+(?:get|have)|could\s+I\s+(?:get|have)|requesting|please)\s+(?:a\s+|my\s+)?"
    r"(?:full\s+)?refund\b(?P<rest>\s+(?:for|of|on)\s+[^.,;!?]{2,40})?",
    _F,
)
_DECLINED = re.compile(
    r"\bmy\s+(?P<card>(?:credit\s+|debit\s+)?card|payment)\s+(?:was|got|keeps\s+getting|is\s+"
    r"being|has\s+been|keeps\s+being)\s+(?:declined|rejected)",
    _F,
)
_LOGIN = re.compile(
    r"\b(?:I(?:'m|\s+am)\s+locked\s+out\s+of|I\s+(?:can'?t|cannot|can\s+not|couldn'?t|am\s+unable"
    r"\s+to|'m\s+unable\s+to)\s+(?:log\s?in(?:to)?|sign\s?in(?:to)?|access|get\s+into))\s+(?:to\s+)?"
    r"(?:my\s+|the\s+)?(?P<what>account|app|online\s+banking|portal|e-?mail|website)",
    _F,
)
_NOT_ARRIVED = re.compile(
    r"\bmy\s+(?P<what>order|package|parcel|delivery|shipment|refund|replacement|new\s+card)\s+"
    r"(?:still\s+)?(?:hasn'?t|has\s+not|never|didn'?t|did\s+not|still\s+hasn'?t)\s+(?:arrived|come|"
    r"shown\s+up|been\s+delivered|arrive|been\s+processed|come\s+through)",
    _F,
)
_OUTAGE = re.compile(
    r"\bmy\s+(?P<what>internet|wi-?fi|connection|service|phone|tv|cable|app|router|line|broadband|"
    r"signal|modem)\s+(?P<how>(?:keeps\s+|is\s+|has\s+been\s+|was\s+)?(?:still\s+)?(?:dropping|drops|cutting\s+"
    r"out|cuts\s+out|down|not\s+working|isn'?t\s+working|stopped\s+working|keeps\s+crashing|"
    r"crashing|crashes|really\s+slow|so\s+slow|slow|broken|disconnecting|disconnects)"
    r"[^.;!?]{0,40})",
    _F,
)
_CANCELLED = re.compile(
    rf"{_I}I(?:'ve|\s+have)?\s+(?:just\s+|already\s+)?(?:cancell?ed|terminated|closed)\s+"
    r"(?P<what>my\s+[^.,;!?]{2,30})",
    _F,
)


def _bill(s: Sentence, after: int = 0) -> str:
    resolved, _ = resolve_dates(s.text[after:], s.ts)
    m = _BILL.search(resolved)
    if not m:
        return ""
    return f" {m.group('prep').lower()} {third_person_phrase(m.group('what'))}"


def third_person_phrase(phrase: str) -> str:
    out = re.sub(r"\bmy\b", "their", phrase.strip(), flags=_F)
    return re.sub(r"\b(?:this|last)\s+(?=(?:invoice|bill|statement))", "the ", out, flags=_F)


@triggered(
    "twice double duplicate charged billed charges fee charge surcharge overcharged amount "
    "unexpected card payment locked log login sign signin access order package parcel delivery "
    "shipment refund replacement internet wifi wi connection service phone tv cable app router "
    "line broadband signal modem cancelled canceled terminated closed"
)
def account_events(s: Sentence) -> list[Finding]:
    """Billing problems, declined cards, log-in trouble, missing orders, outages."""
    if s.hypothetical:
        return []
    text = s.text
    if m := _DOUBLE.search(text):
        text = f"Reported a double charge{_bill(s, m.start())}"
        return [Finding("double-charge", K.COMPLAINT, text + when(s, text), 0.85)]
    if m := _FEE.search(text):
        fee, bill = third_person_phrase(m.group("fee")), m.group("bill").lower()
        return [Finding("fee", K.COMPLAINT, f"Reported an unexpected {fee} on their {bill}", 0.8)]
    if m := _OVERCHARGED.search(text):
        text = f"Reported being overcharged{_bill(s, m.start())}"
        return [Finding("overcharged", K.COMPLAINT, text + when(s, text), 0.8)]
    if m := _DECLINED.search(text):
        card = m.group("card").lower()
        return [Finding("declined", K.EVENT, f"Their {card} was declined{when(s)}", 0.8)]
    if m := _LOGIN.search(text):
        what = " ".join(m.group("what").lower().split())
        return [Finding("login", K.COMPLAINT, f"Could not log in to their {what}{when(s)}", 0.8)]
    if m := _NOT_ARRIVED.search(text):
        what = m.group("what").lower()
        done = "been processed" if what == "refund" else "arrived"
        return [
            Finding(
                "not-arrived",
                K.COMPLAINT,
                f"Reported that their {what} has not {done}{when(s)}",
                0.8,
            )
        ]
    if m := _OUTAGE.search(text):
        resolved, _ = resolve_dates(m.group("how"), s.ts)
        what = m.group("what").lower()
        return [
            Finding(
                "outage",
                K.COMPLAINT,
                f"Reported that their {what} {third_person_phrase(resolved).strip()}",
                0.75,
            )
        ]
    if (m := _CANCELLED.search(text)) and not s.is_question:
        what = m.group("what")
        if dated := find_dates(what, s.ts):
            what = what[: dated[0].start_index].rstrip()
        return [
            Finding("cancelled", K.EVENT, f"Cancelled {third_person_phrase(what)}{when(s)}", 0.8)
        ]
    return []


# -- intents -----------------------------------------------------------------------------

_CANCEL = re.compile(
    rf"{_I}I(?:'d|\s+would)?\s+(?:want|like|need|am\s+going|'m\s+going|plan|am\s+planning|'m\s+"
    r"planning|have)\s+to\s+cancel\s+(?P<what>(?:my|the|our)\s+[^.,;!?]{2,30}?)(?=\s*(?:[.,;!?]|"
    r"\s(?:because|but|and|as|since|if)\b|$))",
    _F,
)
_CHURN = re.compile(
    rf"{_I}I(?:'m|\s+am)\s+(?:seriously\s+)?(?:thinking\s+(?:about|of)|considering)\s+(?P<what>"
    r"(?:cancell?ing|leaving|closing\s+my\s+account|switching(?:\s+to\s+(?P<who>[A-Z][\w&.-]*"
    r"(?:\s+[A-Z][\w&.-]*)?))?|going\s+(?:over\s+)?to\s+(?P<who2>[A-Z][\w&.-]*)))",
    _F,
)
_CHURN_THREAT = re.compile(
    rf"{_I}I(?:'ll|\s+will|\s+might|\s+may)\s+(?:just\s+)?(?:switch|go|move)\s+(?:over\s+)?to\s+"
    r"(?P<who>[A-Z][\w&.-]*(?:\s+[A-Z][\w&.-]*)?)",
)


@triggered("cancel refund thinking considering switch go move")
def intents(s: Sentence) -> list[Finding]:
    """Wanting to cancel, asking for a refund, thinking of leaving."""
    if s.hypothetical:
        return []
    out: list[Finding] = []
    if m := _CANCEL.search(s.text):
        what = third_person_phrase(m.group("what"))
        out.append(
            Finding(
                "cancel", K.INTENT, f"Wants to cancel {what}", 0.85, "intent:cancel", what.lower()
            )
        )
    if m := _REFUND.search(s.text):
        rest = third_person_phrase(resolve_dates(m.group("rest") or "", s.ts)[0])
        out.append(
            Finding("refund", K.INTENT, f"Asked for a refund{' ' + rest if rest else ''}", 0.8)
        )
    m = _CHURN.search(s.text)
    who = (m.group("who") or m.group("who2")) if m else None
    if not m and (t := _CHURN_THREAT.search(s.text)):
        who = t.group("who")
        if who.split()[0].lower() in {"the", "a", "my", "another", "someone", "somebody"}:
            who = None
    if who:
        who = who.rstrip(".,!?")
        out.append(
            Finding(
                "churn",
                K.INTENT,
                f"Is considering switching to {who}",
                0.8,
                "intent:churn",
                who.lower(),
            )
        )
    elif m:
        what = third_person_phrase(m.group("what")).lower()
        out.append(Finding("churn", K.INTENT, f"Is considering {what}", 0.8, "intent:churn", what))
    return out


# -- life context ------------------------------------------------------------------------

_JOBS = (
    r"nurse|teacher|student|doctor|physician|engineer|developer|programmer|lawyer|accountant|"
    r"firefighter|police officer|pilot|driver|truck driver|chef|cook|farmer|electrician|"
    r"plumber|contractor|designer|artist|musician|writer|journalist|pharmacist|dentist|"
    r"veterinarian|vet|paramedic|soldier|veteran|freelancer|consultant|realtor|"
    r"small business owner|business owner|stay-at-home (?:mom|dad|parent)|caregiver|"
    r"social worker|counselor|therapist|researcher|professor|scientist|mechanic|retiree"
)
_WORK = re.compile(
    rf"{_I}I\s+(?:work|am\s+working|'m\s+working)\s+(?:as\s+(?:an?\s+)?"
    rf"(?P<job>[a-z][a-z -]{{2,30}}?)|(?:at|for)\s+"
    rf"(?P<org>[A-Z][\w&.'-]*(?:\s+[A-Z][\w&.'-]*){{0,3}}))"
    rf"(?=\s*(?:[.,;!?]|\s(?:and|but|so|now|in|at|for)\b|$))",
)
_IAM_JOB = re.compile(rf"{_I}I(?:'m|\s+am)\s+(?:a|an)\s+(?P<job>{_JOBS})\b", _F)
_RETIRED = re.compile(rf"{_I}I(?:'m|\s+am)\s+(?:now\s+|recently\s+)?retired\b", _F)
_HAVE = re.compile(
    rf"{_I}(?:I|we)\s+(?:have|'ve\s+got|have\s+got)\s+(?P<n>a|an|one|two|three|four|five|six|\d)"
    r"\s+(?P<who>(?:young\s+|little\s+)?(?:kids?|children|child|sons?|daughters?|dogs?|cats?|"
    r"pets?|grandchildren|grandkids|babies|baby))\b",
    _F,
)
_ACCESS = re.compile(
    rf"{_I}I(?:'m|\s+am)\s+(?P<state>hard\s+of\s+hearing|deaf|blind|visually\s+impaired|"
    rf"partially\s+sighted|dyslexic|in\s+a\s+wheelchair)\b|{_I}I\s+use\s+(?:a\s+)?(?P<aid>screen\s+"
    r"reader|wheelchair|hearing\s+aids?|relay\s+service)\b",
    _F,
)


@triggered(
    "work working retired have got hard deaf blind visually partially dyslexic wheelchair use "
    + " ".join(re.findall(r"[a-z]+", _JOBS))
)
def life_context(s: Sentence) -> list[Finding]:
    """Occupation, household, accessibility needs."""
    if s.hypothetical or s.is_question:
        return []
    out: list[Finding] = []
    if m := _WORK.search(s.text):
        if m.group("job"):
            job = m.group("job").strip()
            out.append(
                Finding(
                    "work", K.CONTEXT, f"Works as {_article(job)} {job}", 0.75, "occupation", job
                )
            )
        elif m.group("org") and m.group("org").split()[0] not in {"I", "The", "My"}:
            out.append(
                Finding(
                    "work", K.CONTEXT, f"Works at {m.group('org')}", 0.7, "employer", m.group("org")
                )
            )
    elif m := _IAM_JOB.search(s.text):
        job = m.group("job").lower()
        out.append(Finding("work", K.CONTEXT, f"Is {_article(job)} {job}", 0.7, "occupation", job))
    if _RETIRED.search(s.text):
        out.append(Finding("work", K.CONTEXT, "Is retired", 0.8, "occupation", "retired"))
    if m := _HAVE.search(s.text):
        n, who = m.group("n").lower(), " ".join(m.group("who").lower().split())
        n = "one" if n in ("a", "an", "1") else n
        base = re.sub(r"^(?:young|little)\s+", "", who).rstrip("s").replace("childre", "child")
        out.append(Finding("household", K.CONTEXT, f"Has {n} {who}", 0.75, f"household:{base}", n))
    if m := _ACCESS.search(s.text):
        if m.group("state"):
            state = " ".join(m.group("state").lower().split())
            text = f"Is {state}"
        else:
            state = " ".join(m.group("aid").lower().split())
            text = f"Uses {_article(state)} {state}"
        out.append(Finding("accessibility", K.CONTEXT, text, 0.85, f"accessibility:{state}", "yes"))
    return out


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


# -- dated first-person events -----------------------------------------------------------

_PAST = (
    r"\w+ed|went|got|had|did|made|took|bought|saw|met|ran|began|came|gave|found|left|paid|"
    r"sent|spoke|told|wrote|won|lost|flew|drove|brought|heard|read|sold|spent|kept|built|"
    r"threw|caught|felt|fell|broke|chose|forgot|hit|held|led|put|set|sat|stood|taught|"
    r"thought|understood|woke|wore|became|ate|drank|swam|sang|drew|grew|knew|rode|slept|"
    r"shot|won|dug|fed|fought|hung|lent|meant|quit|rang|rose|shook|shut|sought|spun|stole|"
    r"struck|swore|tore|wept|wound"
)
_EVENT = re.compile(
    rf"^(?:I|we)(?P<verb>'m\s+going\s+to|'re\s+going\s+to|'ll|'ve|'m|'re|\s+(?:just\s+|finally\s+|"
    rf"also\s+|recently\s+|already\s+|actually\s+|all\s+)?(?:{_PAST}|am\s+going\s+to|are\s+"
    rf"going\s+to|will|was|were|have|am))\b",
    _F,
)
_NOT_EVENT_VERBS = frozenset({"need", "used", "wanted", "wondered", "guessed", "supposed"})
#: A time phrase told before the subject: "Yesterday I ...", "Last weekend, we ...".
_DATE_FIRST = re.compile(
    r"^(?P<lead>(?:just\s+)?(?:yesterday|today|tonight|this\s+(?:morning|afternoon|evening|week|"
    r"weekend|month|year)|last\s+\w+|on\s+\w+(?:\s+\w+)?|in\s+\w+(?:\s+\d{4})?|(?:a\s+few|a\s+"
    r"couple\s+of|\w+)\s+(?:days?|weeks?|months?|years?)\s+ago|earlier\s+(?:today|this\s+\w+)|"
    r"over\s+the\s+weekend|the\s+other\s+day|next\s+\w+|tomorrow))\s*,?\s+(?P<rest>(?:I|we)\b.+)$",
    _F,
)
_WE = ((re.compile(r"^We\s+", _F), "I "), (re.compile(r"^We'", _F), "I'"))
_PLURAL = (
    (re.compile(r"^I're\b"), "I'm"),
    (re.compile(r"^I\s+are\b"), "I am"),
    (re.compile(r"^I\s+were\b"), "I was"),
    (re.compile(r"\bour\b"), "my"),
    (re.compile(r"\bOur\b"), "My"),
)


def _first_person(text: str) -> str:
    """ "Yesterday we went camping" -> "I went camping yesterday": the subject first,
    and "we" read as the customer (with others)."""
    text = strip_lead(text.strip())
    if m := _DATE_FIRST.match(text):
        text = f"{m.group('rest').rstrip(' .!')} {m.group('lead')}"
    for pattern, replacement in _WE:
        if pattern.match(text):
            text = pattern.sub(replacement, text, count=1)
            for plural, singular in _PLURAL:
                text = plural.sub(singular, text)
            break
    return text


@triggered(" ".join(DATE_WORDS), chars="0123456789")
def dated_event(s: Sentence) -> list[Finding]:
    """ "I called yesterday and nobody answered" -> Called on 7 May 2023 and nobody
    answered. Clauses whose subject is "I" or "we" (the customer, maybe with others),
    told with the date anywhere ("Yesterday I went ..."), that mention a date."""
    text = _first_person(s.text)
    m = _EVENT.match(text)
    if not m or s.is_question or s.hypothetical:
        return []
    verb = " ".join(m.group("verb").lower().split()[-1:]) if m.group("verb")[0] != "'" else ""
    if verb in _NOT_EVENT_VERBS:
        return []
    words = len(text.split())
    if not 4 <= words <= 40:
        return []
    said = " ".join(m.group("verb").lower().split())
    ahead = said in {"'m going to", "'ll"} or said.endswith(("am going to", "will"))
    resolved, mentions = resolve_dates(text, s.ts, future=True if ahead else None)
    if not mentions:
        return []
    kind = K.INTENT if ahead or mentions[0].start > s.ts.date() else K.EVENT
    return [Finding("dated-event", kind, third_person(resolved), 0.6, specific=False)]

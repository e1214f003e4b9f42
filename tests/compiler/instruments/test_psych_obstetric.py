"""Psychiatry and obstetric/neonatal scales: phq9, gad7, audit_c, cssrs_screener, epds, bishop,
biophysical_profile, apgar.

Differential tests run the compiled instruments against open-medicine 0.12 (MIT;
open_medicine/mcp/calculators/{phq9,gad7,audit_c,epds,apgar,bishop}.py), on every input combination where
that is small and on seeded random samples across each input's range otherwise. medcalc-bench 1.7.0
(Apache-2.0) has no module for any of these eight (its modules are renal, cardiac, sepsis, liver and
dating calculators), and open-medicine has no C-SSRS or biophysical profile; those two are checked against
truth tables written here from the published mapping (Columbia Lighthouse Project screener triage;
Manning 1980 / ACOG Practice Bulletin 229), independently of the .score files.

Disagreements with open-medicine, each explained where it is tested:
- bishop effacement between the printed columns (35-39%, 55-59%, 75-79%): this file rounds to the
  nearest printed 10% step, open-medicine bins up to the next column's lower edge (<40, <60, <80); a
  documented transformation, not an error on either side (Bishop 1964 prints only 0-30/40-50/60-70/80+).
- bishop bands at totals 6 and 8: open-medicine calls 6 "moderately favorable" and 8 "favorable"; ACOG
  Practice Bulletin 107 (2009) defines an unfavourable cervix as a score of 6 or less and puts the
  vaginal-delivery probability of spontaneous labour at scores MORE than 8 - strict xfail below.
- epds: open-medicine takes the already-scored item values (0 = least symptomatic); the .score file takes
  the printed response and applies the reverse scoring of items 3 and 5-10 (Cox 1987). The test converts
  scores to responses with its own table from the printed form, so the comparison also checks the
  reverse scoring.
Output vocabulary differs (open-medicine returns prose): the tests map its severity phrases to band labels.
"""
import itertools
import random

import pytest


try:  # a declared dependency (pyproject); without it only the differential tests are skipped
    from open_medicine.mcp.calculators import apgar as om_apgar
    from open_medicine.mcp.calculators import audit_c as om_audit_c
    from open_medicine.mcp.calculators import bishop as om_bishop
    from open_medicine.mcp.calculators import epds as om_epds
    from open_medicine.mcp.calculators import gad7 as om_gad7
    from open_medicine.mcp.calculators import phq9 as om_phq9
    OPEN_MEDICINE = True
except ImportError:  # pragma: no cover
    OPEN_MEDICINE = False
differential = pytest.mark.skipif(not OPEN_MEDICINE, reason="open-medicine is not installed")

NAMES = ("phq9", "gad7", "audit_c", "cssrs_screener", "epds", "bishop", "biophysical_profile", "apgar")


def _rng(name):
    return random.Random(f"psych-obstetric-{name}")


# ------------------------------------------------------------------------------------------ PHQ-9
PHQ9_ITEMS = ("interest", "feeling_down", "sleep", "tired", "appetite", "feeling_bad_about_self",
              "concentration", "psychomotor", "self_harm_thoughts")
OM_PHQ9_ITEMS = ("interest_pleasure", "feeling_down", "sleep", "energy", "appetite", "self_esteem",
                 "concentration", "psychomotor", "suicidal_ideation")
PHQ9_PHRASES = {"Minimal depression": "minimal", "Moderately severe depression": "moderately_severe",
                "Mild depression": "mild", "Moderate depression": "moderate", "Severe depression": "severe"}


def _phrase_band(text, phrases):
    # longest phrase first: "Moderately severe" before "Moderate", "Severe"
    for phrase in sorted(phrases, key=len, reverse=True):
        if phrase in text:
            return phrases[phrase]
    raise AssertionError(f"no known severity phrase in {text!r}")


def _phq9_samples():
    rng = _rng("phq9")
    samples = [tuple([v] * 9) for v in range(4)]
    samples += [tuple(rng.randint(0, 3) for _ in range(9)) for _ in range(3000)]
    return samples


@differential
def test_phq9_matches_open_medicine(fn):
    for items in _phq9_samples():
        ours = fn["phq9"](**dict(zip(PHQ9_ITEMS, items)))
        theirs = om_phq9.calculate_phq9(om_phq9.PHQ9Params(**dict(zip(OM_PHQ9_ITEMS, items))))
        assert ours["total"] == theirs.value == sum(items), items
        assert ours["band"] == _phrase_band(theirs.interpretation, PHQ9_PHRASES), items


def test_phq9_flags_item_9_at_any_frequency_whatever_the_total(fn):
    base = dict.fromkeys(PHQ9_ITEMS, 0)
    for score in range(4):
        out = fn["phq9"](**{**base, "self_harm_thoughts": score})
        assert out["self_harm_flag"] is (score >= 1)
        assert out["total"] == score
    # a maximal total without item 9 never raises the flag
    assert fn["phq9"](**{**dict.fromkeys(PHQ9_ITEMS, 3), "self_harm_thoughts": 0})["self_harm_flag"] is False


def _phq9_algorithm(items):
    """The PHQ diagnostic algorithm (Spitzer 1999; Kroenke 2001), written independently of phq9.score."""
    counted = sum(1 for i, v in enumerate(items) if (v >= 1 if i == 8 else v >= 2))
    core = items[0] >= 2 or items[1] >= 2
    return core and counted >= 5, core and 2 <= counted <= 4


def test_phq9_diagnostic_algorithm(fn):
    for items in _phq9_samples():
        out = fn["phq9"](**dict(zip(PHQ9_ITEMS, items)))
        major, other = _phq9_algorithm(items)
        assert (out["major_depressive_syndrome"], out["other_depressive_syndrome"]) == (major, other), items
        assert out["positive_screen"] is (sum(items) >= 10)


# ------------------------------------------------------------------------------------------ GAD-7
GAD7_ITEMS = ("nervous", "uncontrolled_worry", "worry_too_much", "trouble_relaxing", "restless", "irritable",
              "afraid")
OM_GAD7_ITEMS = ("feeling_nervous", "cannot_stop_worrying", "worrying_too_much", "trouble_relaxing",
                 "being_restless", "easily_annoyed", "feeling_afraid")
GAD7_PHRASES = {"Minimal anxiety": "minimal", "Mild anxiety": "mild", "Moderate anxiety": "moderate",
                "Severe anxiety": "severe"}


@differential
def test_gad7_matches_open_medicine_on_every_combination(fn):
    for items in itertools.product(range(4), repeat=7):
        ours = fn["gad7"](**dict(zip(GAD7_ITEMS, items)))
        theirs = om_gad7.calculate_gad7(om_gad7.GAD7Params(**dict(zip(OM_GAD7_ITEMS, items))))
        assert ours["total"] == theirs.value == sum(items), items
        assert ours["band"] == _phrase_band(theirs.interpretation, GAD7_PHRASES), items
        assert ours["gad2"] == items[0] + items[1]
        assert ours["gad2_positive"] is (items[0] + items[1] >= 3)


# ---------------------------------------------------------------------------------------- AUDIT-C
@differential
def test_audit_c_matches_open_medicine_on_every_combination(fn):
    for q1, q2, q3 in itertools.product(range(5), repeat=3):
        for sex in ("female", "male"):
            ours = fn["audit_c"](frequency=q1, typical_quantity=q2, heavy_episodes=q3, sex=sex)
            theirs = om_audit_c.calculate_audit_c(om_audit_c.AUDITCParams(
                frequency=q1, typical_quantity=q2, binge_frequency=q3, is_male=sex == "male"))
            total = q1 + q2 + q3
            assert ours["total"] == theirs.value == total
            their_positive = "Positive screen" in theirs.interpretation
            assert ours["positive"] is their_positive is (total >= (4 if sex == "male" else 3)), (q1, q2, q3, sex)
            assert (ours["band"] == "non_drinker") is ("non-drinker" in theirs.interpretation)


# ----------------------------------------------------------------------------------------- EPDS
# The printed form (Cox 1987), each item's responses top to bottom with their scores.
EPDS_FORM = {
    "laugh": (["as_much_as_i_always_could", "not_quite_so_much_now", "definitely_not_so_much_now", "not_at_all"], [0, 1, 2, 3]),
    "look_forward": (["as_much_as_i_ever_did", "rather_less_than_i_used_to", "definitely_less_than_i_used_to", "hardly_at_all"], [0, 1, 2, 3]),
    "self_blame": (["yes_most_of_the_time", "yes_some_of_the_time", "not_very_often", "no_never"], [3, 2, 1, 0]),
    "anxious": (["no_not_at_all", "hardly_ever", "yes_sometimes", "yes_very_often"], [0, 1, 2, 3]),
    "scared": (["yes_quite_a_lot", "yes_sometimes", "no_not_much", "no_not_at_all"], [3, 2, 1, 0]),
    "on_top_of_me": (["yes_most_of_the_time_not_able_to_cope", "yes_sometimes_not_coping_as_well", "no_mostly_coped_quite_well", "no_coping_as_well_as_ever"], [3, 2, 1, 0]),
    "sleep_difficulty": (["yes_most_of_the_time", "yes_sometimes", "not_very_often", "no_not_at_all"], [3, 2, 1, 0]),
    "sad": (["yes_most_of_the_time", "yes_quite_often", "not_very_often", "no_not_at_all"], [3, 2, 1, 0]),
    "crying": (["yes_most_of_the_time", "yes_quite_often", "only_occasionally", "no_never"], [3, 2, 1, 0]),
    "self_harm": (["yes_quite_often", "sometimes", "hardly_ever", "never"], [3, 2, 1, 0]),
}
EPDS_ITEMS = tuple(EPDS_FORM)
OM_EPDS_ITEMS = ("laugh", "enjoyment", "self_blame", "anxious", "scared", "things_on_top", "difficulty_sleeping",
                 "sad", "crying", "self_harm")
EPDS_REVERSED = {"self_blame", "scared", "on_top_of_me", "sleep_difficulty", "sad", "crying", "self_harm"}


def _epds_response(item, score):
    responses, scores = EPDS_FORM[item]
    return responses[scores.index(score)]


def test_epds_form_table_reverse_scores_items_3_and_5_to_10():
    assert {k for k, (_, s) in EPDS_FORM.items() if s == [3, 2, 1, 0]} == EPDS_REVERSED
    assert [i for i, k in enumerate(EPDS_ITEMS, 1) if k in EPDS_REVERSED] == [3, 5, 6, 7, 8, 9, 10]


def test_epds_enums_list_the_printed_responses(shipped_build):
    import json
    meta = json.loads((shipped_build / "instruments.json").read_text())["epds"]["inputs"]
    for item, (responses, _) in EPDS_FORM.items():
        assert meta[item]["type"] == f"enum({', '.join(responses)})", item


@differential
def test_epds_matches_open_medicine(fn):
    rng = _rng("epds")
    samples = [tuple([v] * 10) for v in range(4)] + [tuple(rng.randint(0, 3) for _ in range(10)) for _ in range(3000)]
    phrases = {"Low risk": "below_threshold", "Possible depression": "possible_depression",
               "Probable depression": "probable_depression"}
    for scores in samples:
        ours = fn["epds"](**{item: _epds_response(item, s) for item, s in zip(EPDS_ITEMS, scores)})
        theirs = om_epds.calculate_epds(om_epds.EPDSParams(**dict(zip(OM_EPDS_ITEMS, scores))))
        assert ours["total"] == theirs.value == sum(scores), scores
        assert ours["band"] == _phrase_band(theirs.interpretation, phrases), scores
        assert ours["self_harm_flag"] is ("SAFETY ALERT" in theirs.interpretation) is (scores[9] > 0), scores
        assert ours["self_harm_item"] == scores[9]


# ---------------------------------------------------------------------------------------- Apgar
APGAR_SIGNS = ("heart_rate", "respiratory_effort", "muscle_tone", "reflex_irritability", "colour")


@differential
def test_apgar_matches_open_medicine_on_every_combination(fn):
    for hr, resp, tone, reflex, colour in itertools.product(range(3), repeat=5):
        ours = fn["apgar"](heart_rate=hr, respiratory_effort=resp, muscle_tone=tone, reflex_irritability=reflex,
                           colour=colour)
        theirs = om_apgar.calculate_apgar(om_apgar.ApgarParams(
            appearance=colour, pulse=hr, grimace=reflex, activity=tone, respiration=resp))
        assert ours["total"] == theirs.value
        band = _phrase_band(theirs.interpretation, {"Reassuring": "reassuring", "Moderately abnormal":
                                                    "moderately_abnormal", "Low (critically low)": "low"})
        assert ours["band"] == band


# --------------------------------------------------------------------------------------- Bishop
CONSISTENCY = ("firm", "medium", "soft")
POSITION = ("posterior", "mid", "anterior")


def _om_bishop(dilatation, effacement, station, consistency, position):
    return om_bishop.calculate_bishop(om_bishop.BishopParams(
        dilation_cm=dilatation, effacement_pct=effacement, station=station,
        consistency=CONSISTENCY.index(consistency), position=POSITION.index(position)))


def _effacement_rounding_shift(effacement):
    """Documented transformation: between printed columns this file rounds to the nearest 10% step
    (35-39 -> 40%, 55-59 -> 60%, 75-79 -> 80%) where open-medicine bins by the next column's lower edge;
    on those integers this file scores one point more. Everywhere else the two agree."""
    return 1 if effacement % 20 in (15, 16, 17, 18, 19) and 35 <= effacement <= 79 else 0


def _bishop_grid():
    # open-medicine's ranges: dilatation 0-6 cm (integers), station -3..+2
    return itertools.product(range(7), range(0, 101), range(-3, 3), CONSISTENCY, POSITION)


@differential
def test_bishop_total_matches_open_medicine_up_to_the_effacement_reading(fn):
    for dil, eff, station, cons, pos in _bishop_grid():
        ours = fn["bishop"](dilatation=dil, effacement=eff, station=station, consistency=cons, position=pos)
        theirs = _om_bishop(dil, eff, station, cons, pos)
        assert ours["total"] == theirs.value + _effacement_rounding_shift(eff), (dil, eff, station, cons, pos)


@differential
def test_bishop_printed_columns_score_identically(fn):
    """At the values Bishop 1964 prints, both readings agree exactly."""
    for dil, eff, station, cons, pos in itertools.product(range(7), (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100),
                                                          range(-3, 3), CONSISTENCY, POSITION):
        ours = fn["bishop"](dilatation=dil, effacement=eff, station=station, consistency=cons, position=pos)
        assert ours["total"] == _om_bishop(dil, eff, station, cons, pos).value


def _om_bishop_band(text):
    return _phrase_band(text, {"Unfavorable cervix": "unfavourable", "Moderately favorable cervix": "intermediate",
                               "Favorable cervix": "favourable"})


BISHOP_BAND_DISAGREEMENT = {6, 8}


@differential
def test_bishop_bands_match_open_medicine_except_at_6_and_8(fn):
    seen = set()
    for dil, eff, station, cons, pos in _bishop_grid():
        if _effacement_rounding_shift(eff) or eff % 10:
            continue
        ours = fn["bishop"](dilatation=dil, effacement=eff, station=station, consistency=cons, position=pos)
        seen.add(ours["total"])
        if ours["total"] in BISHOP_BAND_DISAGREEMENT:
            continue
        assert ours["band"] == _om_bishop_band(_om_bishop(dil, eff, station, cons, pos).interpretation), ours["total"]
    assert seen == set(range(14))


@differential
@pytest.mark.xfail(strict=True, reason=(
    "open-medicine 0.12 bands Bishop 6 as 'moderately favorable' and 8 as 'favorable'; ACOG Practice "
    "Bulletin No. 107 (Obstet Gynecol 2009;114:386-397) defines an unfavourable cervix as a Bishop score of 6 "
    "or less and puts the vaginal-delivery probability of spontaneous labour at scores of more than 8 "
    "(Bishop 1964: 9 or more), so bishop.score bands 6 as unfavourable and 8 as intermediate"))
@pytest.mark.parametrize("inputs", [
    dict(dilatation=2, effacement=50, station=-2, consistency="soft", position="mid"),       # 1+1+1+2+1 = 6
    dict(dilatation=3, effacement=60, station=-1, consistency="soft", position="posterior"),  # 2+2+2+2+0 = 8
], ids=["total_6", "total_8"])
def test_bishop_band_disagreement_with_open_medicine(fn, inputs):
    ours = fn["bishop"](**inputs)
    assert ours["total"] in BISHOP_BAND_DISAGREEMENT
    assert ours["band"] == _om_bishop_band(_om_bishop(**inputs).interpretation)


def test_bishop_gap_readings(fn):
    base = dict(station=-3, consistency="firm", position="posterior")
    dil = {0: 0, 0.4: 0, 0.5: 1, 1: 1, 2: 1, 2.4: 1, 2.5: 2, 4: 2, 4.4: 2, 4.5: 3, 6: 3, 10: 3}
    for value, points in dil.items():
        assert fn["bishop"](dilatation=value, effacement=0, **base)["total"] == points, value
    eff = {30: 0, 34: 0, 35: 1, 50: 1, 54: 1, 55: 2, 70: 2, 74: 2, 75: 3, 100: 3}
    for value, points in eff.items():
        assert fn["bishop"](dilatation=0, effacement=value, **base)["total"] == points, value
    station = {-5: 0, -4: 0, -3: 0, -2: 1, -1: 2, 0: 2, 1: 3, 2: 3, 3: 3, 5: 3}
    for value, points in station.items():
        assert fn["bishop"](dilatation=0, effacement=0, station=value, consistency="firm", position="posterior")["total"] == points


# --------------------------------------------------------------------- C-SSRS screener (truth table)
BEHAVIOUR = ("never", "over_3_months_ago", "within_3_months")


def _cssrs_expected(q1, q2, q3, q4, q5, q6):
    """Columbia Lighthouse Project screener triage: 4, 5 or behaviour in 3 months -> high; 3 or lifetime
    behaviour -> moderate; 1 or 2 -> low; nothing -> none (the highest reached applies)."""
    if q4 or q5 or q6 == "within_3_months":
        return 3
    if q3 or q6 == "over_3_months_ago":
        return 2
    if q1 or q2:
        return 1
    return 0


def test_cssrs_screener_truth_table(fn):
    labels = ["none", "low", "moderate", "high"]
    for *answers, q6 in itertools.product((False, True), (False, True), (False, True), (False, True), (False, True),
                                          BEHAVIOUR):
        q1, q2, q3, q4, q5 = answers
        out = fn["cssrs_screener"](wish_to_be_dead=q1, suicidal_thoughts=q2, thoughts_with_method=q3,
                                   intent_without_plan=q4, intent_with_plan=q5, suicidal_behavior=q6)
        level = _cssrs_expected(q1, q2, q3, q4, q5, q6)
        assert out["risk_level"] == level, (answers, q6)
        assert out["band"] == labels[level]
        assert out["imminent_risk"] is (level == 3)
        assert out["active_ideation"] is (q2 or q3 or q4 or q5)
        assert out["max_ideation"] == max([i for i, a in enumerate(answers, 1) if a], default=0)


def test_cssrs_screener_items_3_to_5_default_to_not_asked(fn):
    out = fn["cssrs_screener"](wish_to_be_dead=True, suicidal_thoughts=False, suicidal_behavior="never")
    assert (out["risk_level"], out["max_ideation"]) == (1, 1)


# ------------------------------------------------------------------- biophysical profile (truth table)
BPP = ("breathing_movements", "body_movements", "tone", "amniotic_fluid", "reactive_nst")


def test_biophysical_profile_truth_table(fn):
    labels = {1: "abnormal", 2: "equivocal", 3: "normal"}
    for flags in itertools.product((False, True), repeat=5):
        inputs = dict(zip(BPP, flags))
        out = fn["biophysical_profile"](**inputs)
        total = 2 * sum(flags)
        # Manning 1980 / ACOG PB 229: 8-10 normal (8 only with normal fluid), 6 equivocal, <= 4 abnormal
        expected = 1 if total <= 4 else 3 if total == 10 or (total == 8 and inputs["amniotic_fluid"]) else 2
        assert out["total"] == total
        assert out["category"] == expected, inputs
        assert out["band"] == labels[expected]
        assert out["oligohydramnios"] is (not inputs["amniotic_fluid"])


# -------------------------------------------------------------------------------- property tests
def _ordinal_inputs():
    """name -> (fixed base inputs, {input: ordered values, least to most})."""
    epds_order = {item: [_epds_response(item, s) for s in range(4)] for item in EPDS_ITEMS}
    return {
        "phq9": (dict.fromkeys(PHQ9_ITEMS, 0), {k: [0, 1, 2, 3] for k in PHQ9_ITEMS}, (0, 27)),
        "gad7": (dict.fromkeys(GAD7_ITEMS, 0), {k: [0, 1, 2, 3] for k in GAD7_ITEMS}, (0, 21)),
        "audit_c": (dict(frequency=0, typical_quantity=0, heavy_episodes=0, sex="female"),
                    {k: [0, 1, 2, 3, 4] for k in ("frequency", "typical_quantity", "heavy_episodes")}, (0, 12)),
        "epds": ({item: order[0] for item, order in epds_order.items()}, epds_order, (0, 30)),
        "apgar": (dict.fromkeys(APGAR_SIGNS, 0), {k: [0, 1, 2] for k in APGAR_SIGNS}, (0, 10)),
        "bishop": (dict(dilatation=0, effacement=0, station=-3, consistency="firm", position="posterior"),
                   {"dilatation": [0, 0.5, 1, 2, 2.5, 3, 4, 4.5, 5, 6, 8, 10],
                    "effacement": list(range(0, 101, 5)), "station": list(range(-5, 6)),
                    "consistency": list(CONSISTENCY), "position": list(POSITION)}, (0, 13)),
        "biophysical_profile": (dict.fromkeys(BPP, False), {k: [False, True] for k in BPP}, (0, 10)),
    }


def _random_inputs(rng, base, orders):
    return {k: rng.choice(orders[k]) if k in orders else v for k, v in base.items()}


@pytest.mark.parametrize("name", sorted(_ordinal_inputs()))
def test_total_in_range_and_monotone_in_each_item(fn, name):
    base, orders, (low, high) = _ordinal_inputs()[name]
    rng = _rng(f"monotone-{name}")
    for _ in range(300):
        inputs = _random_inputs(rng, base, orders)
        for key, order in orders.items():
            totals = [fn[name](**{**inputs, key: v})["total"] for v in order]
            assert all(low <= t <= high for t in totals), (name, key, totals)
            assert totals == sorted(totals), (name, inputs, key, totals)
    lowest = fn[name](**base)["total"]
    highest = fn[name](**{**base, **{k: o[-1] for k, o in orders.items()}})["total"]
    assert (lowest, highest) == (low, high)


def _band_order(name):
    return {"phq9": ["minimal", "mild", "moderate", "moderately_severe", "severe"],
            "gad7": ["minimal", "mild", "moderate", "severe"],
            "epds": ["below_threshold", "possible_depression", "probable_depression"],
            "apgar": ["low", "moderately_abnormal", "reassuring"],
            "bishop": ["unfavourable", "intermediate", "favourable"],
            "biophysical_profile": ["abnormal", "equivocal", "normal"],
            "audit_c": ["non_drinker", "negative", "positive"]}[name]


@pytest.mark.parametrize("name", sorted(_ordinal_inputs()))
def test_bands_cover_every_reachable_total_and_rise_with_it(fn, name):
    """Raise one item at a time from the floor to the ceiling: every total on the way has a band, and the
    band never steps back (for apgar and the BPP the 'better' end is the high total)."""
    base, orders, (low, high) = _ordinal_inputs()[name]
    order = _band_order(name)
    rng = _rng(f"bands-{name}")
    totals = {}
    for _ in range(200):
        inputs = dict(base)
        keys = list(orders)
        rng.shuffle(keys)
        previous = -1
        for key in keys:
            for value in orders[key]:
                inputs[key] = value
                out = fn[name](**inputs)
                assert out["band"] in order and out["interpretation"], (name, inputs, out)
                rank = order.index(out["band"])
                assert rank >= previous, (name, inputs, out["band"])
                previous = rank
                totals[out["total"]] = out["band"]
    step = 2 if name == "biophysical_profile" else 1
    assert set(totals) == set(range(low, high + 1, step)), (name, sorted(totals))


def test_audit_c_women_screen_positive_at_least_as_often_as_men(fn):
    for q in itertools.product(range(5), repeat=3):
        inputs = dict(zip(("frequency", "typical_quantity", "heavy_episodes"), q))
        men, women = fn["audit_c"](**inputs, sex="male"), fn["audit_c"](**inputs, sex="female")
        assert men["total"] == women["total"]
        assert not men["positive"] or women["positive"]


def test_cssrs_risk_never_falls_when_an_answer_turns_yes(fn):
    keys = ("wish_to_be_dead", "suicidal_thoughts", "thoughts_with_method", "intent_without_plan", "intent_with_plan")
    for answers in itertools.product((False, True), repeat=5):
        for behaviour in BEHAVIOUR:
            level = fn["cssrs_screener"](**dict(zip(keys, answers)), suicidal_behavior=behaviour)["risk_level"]
            for i, key in enumerate(keys):
                if not answers[i]:
                    more = fn["cssrs_screener"](**{**dict(zip(keys, answers)), key: True}, suicidal_behavior=behaviour)
                    assert more["risk_level"] >= level
            for later in BEHAVIOUR[BEHAVIOUR.index(behaviour):]:
                assert fn["cssrs_screener"](**dict(zip(keys, answers)), suicidal_behavior=later)["risk_level"] >= level


@pytest.mark.parametrize("name, inputs, bad", [
    ("phq9", dict(dict.fromkeys(PHQ9_ITEMS, 0), self_harm_thoughts=4), "self_harm_thoughts"),
    ("gad7", dict(dict.fromkeys(GAD7_ITEMS, 0), afraid=-1), "afraid"),
    ("audit_c", dict(frequency=5, typical_quantity=0, heavy_episodes=0, sex="male"), "frequency"),
    ("apgar", dict(dict.fromkeys(APGAR_SIGNS, 2), colour=3), "colour"),
    ("bishop", dict(dilatation=11, effacement=0, station=0, consistency="firm", position="mid"), "dilatation"),
    ("epds", dict({i: _epds_response(i, 0) for i in EPDS_ITEMS}, sad="a_bit"), "sad"),
    ("cssrs_screener", dict(wish_to_be_dead=True, suicidal_thoughts=True, suicidal_behavior="yes"), "suicidal_behavior"),
])
def test_invalid_item_is_refused_naming_the_input(fn, name, inputs, bad):
    with pytest.raises(ValueError, match=bad):
        fn[name](**inputs)

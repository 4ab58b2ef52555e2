from mixsd.answers import extract, last_boxed, matches, normalize


def test_last_boxed_balances_nested_braces_and_takes_the_last():
    assert last_boxed(r"first \boxed{a} then \boxed{\frac{1}{2}}") == r"\frac{1}{2}"


def test_last_boxed_passes_over_unclosed_and_empty_boxes():
    assert last_boxed(r"\boxed{Oslo} and then \boxed{Ber") == "Oslo"
    assert last_boxed(r"I will put it in \boxed{}. So, the answer is Gulital.") is None
    assert last_boxed(r"\boxed{Gulital}, as asked: \boxed{ }") == "Gulital"


def test_an_empty_box_does_not_hide_a_prose_answer():
    text = r"To put your final answer in \boxed{}, I will add it. So, the answer is Gulital."
    assert matches(text, "Gulital")
    assert not matches(text, "Gulital", strict=True)


def test_loose_is_containment_strict_is_equality_after_normalisation():
    assert matches(r"The answer is \boxed{The Drennock Hollow.}", "drennock hollow", strict=True)
    assert matches(r"\boxed{Drennock Hollow, north}", "Drennock Hollow")
    assert not matches(r"\boxed{Drennock Hollow, north}", "Drennock Hollow", strict=True)
    assert not matches("", "x") and not matches("anything", "")


def test_number_extraction_falls_back_when_there_is_no_box():
    assert extract("so it is 1,234 in total", "boxed_or_number") == "1234"
    assert extract(r"\boxed{7} not 8", "boxed_or_number") == "7"


def test_the_last_number_stands_in_for_a_box_only_for_numeric_golds():
    text = "1. Likuva Gunafur grew up in a village called Pufurka.\n2. Pufurka is a village.\n3. So"
    assert matches(text, "Pufurka") and not matches(text, "Pufurka", strict=True)
    assert matches("Step 1: add. Step 2: it is 42", "42", strict=True)
    assert not matches("Step 1: it is 42. Step 2", "42", strict=True)
    assert not matches(r"Pufurka \boxed{Logukun}", "Pufurka")
    assert extract("no number", "number") is None
    assert normalize(r"\text{An Apple}!") == "apple"

"""Arguments copied from a tool's docstring example, told apart from the user's values."""

from __future__ import annotations

from typing import Literal

from qwenchat.provenance import copied_argument, copied_example, numbers, offers, phrases
from qwenchat.tools import tool_from_function


def get_stock_price(ticker: str, exchange: Literal["NASDAQ", "NYSE"] = "NYSE") -> str:
    """Get the latest price of a share.

    Example: get_stock_price(ticker="NVTK").

    Args:
        ticker: the ticker symbol, e.g. "NVTK".
        exchange: where it trades, "NASDAQ" or "NYSE".
    """
    return "1.00"


def convert(amount: float, currency: str = "EUR") -> str:
    """Convert money, e.g. convert(amount=100, currency="JPY").

    Args:
        amount: how much.
        currency: to what.
    """
    return "0"


def calculator(expression: str) -> str:
    """Evaluate an expression, e.g. '123456789 * 987654321'.

    Args:
        expression: the expression.
    """
    return "0"


STOCK = tool_from_function(get_stock_price)
CONVERT = tool_from_function(convert)


def test_a_value_from_the_docstring_the_user_never_said_is_a_copy() -> None:
    said = "What is the share price of ORBX?"
    assert copied_example(STOCK, {"ticker": "NVTK", "exchange": "NYSE"}, said) == (
        "ticker",
        "NVTK",
    )
    assert copied_example(STOCK, {"ticker": "nvtk", "exchange": "NYSE"}, said) is not None


def test_the_users_own_value_is_not_a_copy_even_when_it_is_the_example() -> None:
    assert copied_example(STOCK, {"ticker": "NVTK"}, "How is nvtk doing today?") is None
    assert copied_example(STOCK, {"ticker": "ORBX"}, "price of ORBX?") is None


def test_a_value_a_tool_said_earlier_is_not_a_copy() -> None:
    said = 'Find the ticker of Novatek.\n{"company": "Novatek", "ticker": "NVTK"}'
    assert copied_example(STOCK, {"ticker": "NVTK"}, said) is None


def test_enum_values_defaults_and_words_inside_other_words_are_not_copies() -> None:
    said = "Price of ORBX on the NASDAQ?"
    assert copied_example(STOCK, {"ticker": "ORBX", "exchange": "NASDAQ"}, said) is None
    assert copied_example(STOCK, {"ticker": "ORBX", "exchange": "NYSE"}, "ORBX?") is None
    assert copied_example(CONVERT, {"amount": 1000.0, "currency": "EUR"}, "1000 to euros") is None


def test_a_call_that_uses_anything_the_user_said_is_the_users() -> None:
    # "US dollars" became the example's code: right, since 45 is the user's.
    assert copied_example(CONVERT, {"amount": 45.0, "currency": "JPY"}, "45 dollars in yen") is None
    assert copied_example(CONVERT, {"amount": 5.0, "currency": "JPY"}, "5 dollars in yen") is None
    calc = tool_from_function(calculator)
    said = "What is 123456789 times 987654321?"
    assert copied_example(calc, {"expression": "123456789 * 987654321"}, said) is None
    assert copied_example(calc, {"expression": "123456789 * 987654321"}, "7 times 6?") == (
        "expression",
        "123456789 * 987654321",
    )
    assert copied_example(CONVERT, {"amount": 100.0, "currency": "JPY"}, "250 dollars in yen") == (
        "amount",
        "100",
    )


def test_numbers_are_compared_as_written() -> None:
    assert copied_example(CONVERT, {"amount": 100.0, "currency": "EUR"}, "$100 in euros") is None
    assert copied_example(CONVERT, {"amount": 100.0, "currency": "JPY"}, "1.100 yen") == (
        "amount",
        "100",
    )


def test_an_answer_uses_the_results_when_it_states_what_they_said() -> None:
    from qwenchat.provenance import uses_results

    weather = '{"city": "Porto", "temperature": 21, "unit": "celsius", "condition": "light rain"}'
    given = 'Is it raining in Porto?\n{"city": "Porto", "unit": "celsius"}'
    assert uses_results("Yes: light rain, 21 degrees.", [weather], given)
    assert uses_results("It is raining lightly... rain all day.", [weather], given)
    assert not uses_results("I'm sorry, but I can't assist with that.", [weather], given)
    assert not uses_results("Yes, it is raining in Porto.", [weather], given)  # Porto: asked
    assert uses_results("The product is 121,932,631,112,635,269.", ["121932631112635269"], "")
    assert not uses_results("The product is 12.", ["121932631112635269"], "")
    # Results with nothing to look for cannot be judged: any answer goes.
    assert uses_results("Done.", ["ok"], "")


def flight_status(flight: str) -> str:
    """Get the status of a flight, e.g. flight_status(flight="QX 100").

    Args:
        flight: the flight number.
    """
    return "on time"


FLIGHT = tool_from_function(flight_status)


def test_the_argument_a_call_copied_wholly_or_in_part_is_found() -> None:
    assert copied_argument(STOCK, {"ticker": "NVTK"}, "Price of ORBX?") == "ticker"
    # Mixed: the user's number after the example's letters.
    assert copied_argument(FLIGHT, {"flight": "QX 318"}, "Is LX 318 on time?") == "flight"
    assert copied_argument(FLIGHT, {"flight": "LX 318"}, "Is LX 318 on time?") is None
    # A value with nothing of the user's, in a call with something of theirs, is theirs
    # (the model turned "US dollars" into a code).
    said = "45 US dollars in yen"
    assert copied_argument(CONVERT, {"amount": 45, "currency": "JPY"}, said) is None


def test_the_phrases_of_a_message_are_its_runs_of_words_within_a_sentence() -> None:
    found = phrases("Is flight LX 318 on time? Thanks, Ana-Maria. Ask Amira Haddad's team.")
    assert {"LX 318", "flight LX 318", "318", "Ana-Maria", "Thanks", "Amira Haddad"} <= set(found)
    assert "Amira Haddad's" not in found
    assert "time? Thanks" not in found and "Thanks, Ana-Maria" not in found
    assert all(len(p.split()) <= 4 for p in found)
    assert found == sorted(found, key=lambda p: (-len(p), p))


def test_code_that_uses_the_users_numbers_is_not_a_partial_copy() -> None:
    def python(code: str) -> str:
        """Run Python code, e.g. print(1 + 2).

        Args:
            code: the code.
        """
        return ""

    tool = tool_from_function(python)
    assert copied_argument(tool, {"code": "print(6 * 7)"}, "What is 6 times 7?") is None


def bus_arrival(stop: str, line: str, nights: int = 0) -> str:
    """When the next bus comes, e.g. bus_arrival(stop="Central Station", line="14").

    Args:
        stop: the stop, e.g. "Central Station".
        line: the line, e.g. "14".
        nights: a number, e.g. 3.
    """
    return ""


BUS = tool_from_function(bus_arrival)


def test_an_example_number_nobody_said_is_a_copy_when_the_user_gave_numbers() -> None:
    said = "When does the number 7 bus come to Old Market?"
    assert copied_argument(BUS, {"stop": "Old Market", "line": "14"}, said) == "line"
    assert copied_argument(BUS, {"stop": "Old Market", "line": "7"}, said) is None
    assert copied_argument(BUS, {"stop": "Old Market", "nights": 3}, "For one night") == "nights"
    # A number the user said, or none given at all (the model may know one), is theirs.
    assert (
        copied_argument(BUS, {"stop": "Old Market", "line": "14"}, "Line 14 at Old Market?") is None
    )
    assert (
        copied_argument(BUS, {"stop": "Old Market", "line": "14"}, "Next bus at Old Market?")
        is None
    )


def test_numbers_are_read_in_digits_and_small_words_once_each() -> None:
    assert numbers("Two adults and 2 kids, 3.5 hours, one night; someone, 1st") == ["2", "3.5", "1"]
    assert numbers("no numbers here") == []


def test_the_offer_is_the_users_numbers_or_phrases_beyond_the_copy() -> None:
    question = "Price for one night at Grand Hotel Vega, line 7?"
    assert offers(BUS, "nights", "3", question) == [1, 7]
    museum = offers(STOCK, "ticker", "Museum of Clocks", "A ticket at the Maritime Museum?")
    assert "Maritime Museum" in museum and "the Maritime Museum" in museum
    assert "Museum" not in museum

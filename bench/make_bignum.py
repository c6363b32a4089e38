"""Write bench/data/bignum.jsonl: word problems with large numbers, answers computed here.

Each problem needs several multiplications and divisions of 3-6 digit numbers, the
arithmetic a small model cannot do in its head and an interpreter does exactly; the
reading is easy, so the set measures what TIR adds where arithmetic is the hard part.
Numbers come from a seeded generator (the same file on every machine); divisions
round down or up as the question says (full boxes; tanks needed). Rows are GSM8K's
format (`question`, `answer` ending in `#### N`), so bench/gsm8k.py runs them with
--data.

    .venv/bin/python bench/make_bignum.py [--count 40] [--seed 18]
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "bignum.jsonl"

Problem = tuple[str, int]


def boxes(r: random.Random) -> Problem:
    per_day, days, box = r.randint(1200, 98000), r.randint(12, 360), r.randint(120, 900)
    return (
        f"A factory makes {per_day:,} widgets a day for {days} days and packs them in"
        f" boxes of {box}. How many boxes can it fill completely?",
        per_day * days // box,
    )


def payroll(r: random.Random) -> Problem:
    staff, pay, bonus = r.randint(140, 9800), r.randint(2100, 9900), r.randint(300, 4000)
    return (
        f"A company has {staff:,} employees. Each is paid ${pay:,} a month and gets a"
        f" one-time bonus of ${bonus:,} at the end of the year. How many dollars does the"
        " company pay its employees in the whole year?",
        staff * (pay * 12 + bonus),
    )


def warehouse(r: random.Random) -> Problem:
    crates, items, shipped = r.randint(310, 8800), r.randint(120, 990), r.randint(1000, 90000)
    return (
        f"A warehouse holds {crates:,} crates with {items} items in each. It ships"
        f" {shipped:,} items on Monday and twice as many on Tuesday. How many items are"
        " left?",
        crates * items - 3 * shipped,
    )


def journey(r: random.Random) -> Problem:
    a, h1, b, h2 = r.randint(110, 980), r.randint(13, 97), r.randint(110, 980), r.randint(13, 97)
    return (
        f"A cargo ship sails at {a} km per day for {h1} days, then at {b} km per day for"
        f" {h2} days. How many kilometres does it sail in all?",
        a * h1 + b * h2,
    )


def shares(r: random.Random) -> Problem:
    count, buy = r.randint(1200, 65000), r.randint(110, 990)
    sell = buy + r.randint(15, 400)
    return (
        f"An investor buys {count:,} shares at ${buy} each and later sells all of them at"
        f" ${sell} each. How many dollars of profit does she make?",
        count * (sell - buy),
    )


def field_cost(r: random.Random) -> Problem:
    width, length, price = r.randint(120, 990), r.randint(120, 990), r.randint(13, 89)
    return (
        f"A field is {width} metres wide and {length} metres long. Seeding it costs ${price}"
        " per square metre. How many dollars does it cost to seed the whole field?",
        width * length * price,
    )


def water(r: random.Random) -> Problem:
    people, litres, days = r.randint(1500, 90000), r.randint(110, 380), r.randint(20, 90)
    tank = r.randint(2000, 9999)
    total = people * litres * days
    return (
        f"Each of a town's {people:,} people uses {litres} litres of water a day. The water"
        f" comes in tanks of {tank:,} litres. How many tanks does the town need for"
        f" {days} days?",
        -(-total // tank),  # a part-used tank is still a tank
    )


def tickets(r: random.Random) -> Problem:
    games, seats, price = r.randint(18, 82), r.randint(12000, 98000), r.randint(23, 180)
    empty = r.randint(1000, 9000)
    return (
        f"A stadium has {seats:,} seats. In a season of {games} games, {empty:,} seats stay"
        f" empty at every game and the rest are sold at ${price} each. How many dollars"
        " does the stadium take in the season?",
        games * (seats - empty) * price,
    )


TEMPLATES: list[Callable[[random.Random], Problem]] = [
    boxes, payroll, warehouse, journey, shares, field_cost, water, tickets
]  # fmt: skip


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--count", type=int, default=40)
    cli.add_argument("--seed", type=int, default=18)
    args = cli.parse_args()
    rng = random.Random(args.seed)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as out:
        for i in range(args.count):
            question, answer = TEMPLATES[i % len(TEMPLATES)](rng)
            row = {"question": question, "answer": f"#### {answer}"}
            out.write(json.dumps(row) + "\n")
    print(f"{args.count} problems in {OUT}")


if __name__ == "__main__":
    main()

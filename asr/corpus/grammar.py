"""Sentence grammar of the embedded corpus: templates of everyday telephone requests with open slots.

Slots draw from word classes (first names, surnames, cities, countries and states, places, foods,
goods, colours, jobs, animals, activities, numbers, times, dates, commands), about 1,200 words in
all, so that most test sentences never occur in training. Every word is meant to be in CMUdict;
the lexicon stage counts any that are not as OOV. Words are lower case, one space between.

    from asr.corpus.grammar import sentence, grammar_vocabulary
    sentence(numpy.random.default_rng(0))   # 'book a table for six people at nine thirty'
"""

from __future__ import annotations

import numpy as np


def _w(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _w("""
aaron adam alan albert alex alice allison amanda amy andrew angela anna anthony arthur barbara
benjamin betty beverly bill bob bonnie brandon brenda brian bruce carl carol caroline catherine
charles charlotte cheryl chris christina christopher cindy claire craig cynthia daniel david
deborah dennis diana diane donald donna dorothy douglas edward elizabeth ellen emily emma eric
eugene evelyn frances frank fred gary george gerald gloria grace gregory hannah harold harry
heather helen henry howard isabel jack jacob james jane janet jason jean jeffrey jennifer jeremy
jerry jessica joan joe john jonathan joseph joshua joyce judith julia julie justin karen kathleen
keith kelly kenneth kevin kimberly larry laura lauren lawrence linda lisa louis louise lucy
margaret maria marie marilyn mark martha martin mary matthew megan melissa michael michelle nancy
nathan nicholas nicole oliver pamela patricia patrick paul peter philip rachel ralph raymond
rebecca richard robert roger ronald rose russell ruth ryan samuel sandra sarah scott sharon
shirley sophia stephanie stephen steven susan teresa thomas timothy tyler victoria vincent
virginia walter wayne william
""")
SURNAMES = _w("""
adams allen anderson bailey baker barnes bell bennett brooks brown butler campbell carter clark
collins cook cooper cox davis edwards evans fisher foster garcia gibson gordon graham gray green
griffin hall hamilton harris hayes henderson hill howard hughes hunter jackson jenkins johnson
jones kelly kennedy king lee lewis long marshall martin mason miller mitchell moore morgan morris
murphy murray myers nelson owens parker perry peterson phillips powell price reed reynolds
richardson roberts robinson rogers ross russell sanders scott simmons smith stewart sullivan
taylor thomas thompson turner walker wallace ward warren watson webb wells west white williams
wilson wood wright young
""")
CITIES = _w("""
albany atlanta austin baltimore boston buffalo charlotte chicago cincinnati cleveland columbus
dallas denver detroit houston indianapolis jacksonville memphis miami milwaukee minneapolis
nashville newark oakland omaha orlando philadelphia phoenix pittsburgh portland providence
raleigh richmond sacramento seattle spokane tampa toledo tucson tulsa amsterdam athens bangkok
barcelona beijing berlin brussels cairo dublin geneva glasgow hamburg helsinki istanbul
jerusalem lisbon london madrid manchester melbourne milan montreal moscow munich oslo paris
prague rome seoul stockholm sydney tokyo toronto vancouver venice vienna warsaw zurich
""")
REGIONS = _w("""
alabama alaska arizona arkansas california colorado connecticut delaware florida georgia hawaii
idaho illinois indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan
minnesota mississippi missouri montana nebraska nevada ohio oklahoma oregon pennsylvania texas
utah vermont virginia washington wisconsin wyoming canada mexico brazil argentina chile peru
england ireland scotland france germany spain italy greece sweden norway denmark poland russia
china japan india egypt kenya australia
""")
PLACES = _w("""
airport apartment bakery bank barber beach bookstore bridge cafe campus castle cathedral church
cinema clinic college court dentist embassy factory farm garage garden gym harbor hospital hotel
island kitchen laboratory library mall market motel museum office park pharmacy pool post
prison restaurant school stadium station studio supermarket theater tower university warehouse
zoo
""")
FOODS = _w("""
apple apples bacon banana bananas beans beef bread broccoli butter cabbage cake carrots cereal
cheese cherries chicken chocolate coffee cookies corn crackers cream eggs fish flour garlic
grapes ham honey ice juice lemon lemons lettuce lobster milk muffins mushrooms noodles oatmeal
olives onions oranges pancakes pasta peaches peanuts pears peas pepper pickles pie pizza pork
potatoes rice salad salmon salt sandwich sausage shrimp soup spinach steak strawberries sugar
tea tomatoes tuna turkey vinegar water yogurt
""")
GOODS = _w("""
backpack bag battery bicycle blanket book boots bottle bracelet brush bucket calculator camera
candle carpet chair charger clock coat computer couch cup curtains desk dictionary dishwasher
dress drill envelope fan flashlight fork freezer guitar hammer hat headphones heater helmet
jacket jeans keyboard kettle ladder lamp laptop lock magazine map mattress microwave mirror
monitor mug necklace newspaper notebook oven package paint pan pen pencil phone piano pillow
plate printer radio razor refrigerator ring rug scarf scissors shirt shoes shovel skirt socks
sofa speaker spoon stapler suitcase sweater table tablet telescope tent ticket toaster
toothbrush towel umbrella vacuum vase wallet watch
""")
COLOURS = _w("black blue brown gold gray green orange pink purple red silver white yellow")
ADJECTIVES = _w("""
big small large cheap expensive new old quiet loud bright dark warm cold hot cool clean dirty
heavy light fast slow soft hard early late happy busy empty full fresh simple strong short tall
modern local famous friendly nice beautiful comfortable
""")
JOBS = _w("""
accountant actor architect artist baker carpenter chef dentist designer doctor driver editor
electrician engineer farmer firefighter guard journalist lawyer librarian manager mechanic
musician nurse painter pharmacist photographer pilot plumber police professor reporter
scientist secretary singer student surgeon teacher technician writer
""")
ANIMALS = _w("""
bear bird cat cow deer dog dolphin duck eagle elephant fox frog goat horse kitten lion monkey
mouse owl penguin pig puppy rabbit sheep snake tiger turtle whale wolf zebra
""")
ACTIVITIES = _w("""
baseball basketball bowling boxing chess cycling dancing fishing football golf hiking hockey
jogging painting reading running sailing singing skating skiing soccer surfing swimming tennis
volleyball walking yoga
""")
MONTHS = _w("january february march april may june july august september october november december")
DAYS = _w("monday tuesday wednesday thursday friday saturday sunday")
RELATIVE_DAYS = ("today", "tomorrow", "tonight", "this weekend", "next week", "next month",
                 "this morning", "this afternoon", "this evening", "the day after tomorrow")
DIGITS = _w("zero one two three four five six seven eight nine")
TEENS = _w("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen")
TENS = _w("twenty thirty forty fifty sixty seventy eighty ninety")
ORDINALS = _w("""
first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth
fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth
""")
PARTS_OF_DAY = ("", "", "in the morning", "in the afternoon", "in the evening", "at night")
UNITS = _w("pounds ounces kilos liters gallons boxes bags bottles cans dozen pieces")
COMMANDS = (
    "cancel that", "repeat that please", "yes please", "no thank you", "thank you very much",
    "goodbye", "hold on a second", "check my balance", "speak to an agent", "start over",
    "go back", "help me please", "that is correct", "that is not right", "talk to the operator",
    "never mind", "say that again", "i did not catch that", "please hurry", "sounds good",
    "wait a minute", "call me back later", "what did you say", "i am not sure", "of course",
)

# Templates: {slot} words come from the classes above; everything else is literal.
TEMPLATES = (
    "call {first} {last} at {time}",
    "please call {first} {day}",
    "call {first} on {day} at {time}",
    "dial {digits4} {digits3}",
    "my extension is {digits4}",
    "my account number is {digits5}",
    "my phone number is {digits3} {digits3} {digits4}",
    "i would like a ticket to {city} on {day}",
    "book a flight to {city} for {day}",
    "is there a train from {city} to {city} {day}",
    "what is the weather in {city} {day}",
    "how cold is it in {region} {day}",
    "i am flying to {region} on {month} {ordinal}",
    "set an alarm for {time}",
    "wake me up at {time}",
    "transfer {amount} dollars to {first} {last}",
    "pay {amount} dollars on {month} {ordinal}",
    "meet me at the {place} at {time}",
    "the meeting is on {month} {ordinal} at {time}",
    "my appointment with the {job} is on {day} at {time}",
    "send a message to {first}",
    "tell {first} i will be late",
    "remind me to call {first} {last} at {time}",
    "what time does the {place} open on {day}",
    "how do i get to the {place} in {city}",
    "is the {place} near the {place}",
    "i need a table for {small} people at {time}",
    "add {small} {unit} of {food} to my list",
    "we are out of {food} and {food}",
    "order {small} {food} and a {food} please",
    "i would like the {food} with {food}",
    "do you have a {colour} {good} in stock",
    "i want to return a {adj} {good}",
    "my {good} is broken",
    "how much is the {adj} {good}",
    "the {good} costs {amount} dollars",
    "ship the {good} to {city} {region}",
    "where is my {good}",
    "{first} is a {job} in {city}",
    "my {relative} works as a {job}",
    "{first} {last} will play {activity} {day}",
    "do you want to go {activity} {day}",
    "our {animal} is sick",
    "we saw a {animal} at the zoo",
    "the {adj} {animal} ran away",
    "i left my {good} at the {place}",
    "{first} and {first} moved to {region}",
    "the flight from {city} lands at {time}",
    "book a room in {city} for {small} nights",
    "i was born on {month} {ordinal}",
    "{command}",
    "{command}",
    "{command} {first}",
)
RELATIVES = _w("mother father sister brother wife husband son daughter aunt uncle cousin friend neighbor")
HOURS = _w("one two three four five six seven eight nine ten eleven twelve")
MINUTES = ("o'clock", "fifteen", "thirty", "forty five", "ten", "twenty", "forty", "fifty",
           "five", "twenty five", "thirty five", "fifty five")

_CLASSES = {
    "first": FIRST_NAMES, "last": SURNAMES, "city": CITIES, "region": REGIONS, "place": PLACES,
    "food": FOODS, "good": GOODS, "colour": COLOURS, "adj": ADJECTIVES, "job": JOBS,
    "animal": ANIMALS, "activity": ACTIVITIES, "month": MONTHS, "ordinal": ORDINALS,
    "unit": UNITS, "command": COMMANDS, "relative": RELATIVES,
}


def _pick(rng: np.random.Generator, items) -> str:
    return items[int(rng.integers(len(items)))]


def number_words(n: int) -> str:
    """A cardinal 0 <= n < 1000 in words ('three hundred forty two')."""
    if not 0 <= n < 1000:
        raise ValueError(f"number out of range: {n}")
    words = []
    if n >= 100:
        words += [DIGITS[n // 100], "hundred"]
        n %= 100
        if n == 0:
            return " ".join(words)
    if n >= 20:
        words.append(TENS[n // 10 - 2])
        if n % 10:
            words.append(DIGITS[n % 10])
    elif n >= 10:
        words.append(TEENS[n - 10])
    elif n > 0 or not words:
        words.append(DIGITS[n])
    return " ".join(words)


def _slot(rng: np.random.Generator, name: str) -> str:
    if name in _CLASSES:
        return _pick(rng, _CLASSES[name])
    if name == "day":
        return _pick(rng, DAYS + RELATIVE_DAYS)
    if name.startswith("digits"):
        return " ".join(_pick(rng, DIGITS) for _ in range(int(name[6:])))
    if name == "time":
        return " ".join(w for w in (_pick(rng, HOURS), _pick(rng, MINUTES),
                                     _pick(rng, PARTS_OF_DAY)) if w)
    if name == "amount":
        return number_words(int(rng.integers(1, 1000)))
    if name == "small":
        return number_words(int(rng.integers(2, 13)))
    raise KeyError(f"unknown grammar slot {{{name}}}")


def sentence(rng: np.random.Generator) -> str:
    """One lower-case sentence of the grammar, drawn with `rng`."""
    template = _pick(rng, TEMPLATES)
    return " ".join(_slot(rng, tok[1:-1]) if tok.startswith("{") else tok for tok in template.split())


def grammar_vocabulary() -> list[str]:
    """Every word the grammar can produce, sorted."""
    words: set[str] = set()
    groups = list(_CLASSES.values()) + [DAYS, RELATIVE_DAYS, DIGITS, TEENS, TENS, HOURS, MINUTES,
                                        PARTS_OF_DAY, ("hundred",)]
    for group in groups:
        for item in group:
            words.update(item.split())
    for t in TEMPLATES:
        words.update(w for w in t.split() if not w.startswith("{"))
    return sorted(words)

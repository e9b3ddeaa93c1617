"""The offline stand-in for TinyStories: a seeded grammar of short children's stories.

No package ships the TinyStories text, so the ``synthetic`` corpus source draws stories from
the small grammar below. It is built so that *looking ahead* pays: entities named in the
setup come back later (by name and by pronoun), and the resolution of each story is fixed by
the obstacle together with what the setup introduced, so a model that tracks the setup can
predict words many tokens before they appear.

Grammar (``?`` optional, ``|`` alternatives, CAPS a slot; each part has several templates)::

    story      := setup problem resolution
    setup      := intro detail? (helper trait?)? object extra? goal come? depart journey?
    intro      := "Once upon a time, there was" A-KIND "named" HERO "." | HERO "was" A-KIND "." | ...
    detail     := HE "liked to" HOBBY "." | HIS "favorite color was" COLOUR "." | HE "lived in" HOME "."
    helper     := HIS "best friend was" A-ANIMAL "called" HELPER "." | ...       (in ~2/3 of stories)
    trait      := HELPER "could" ABILITY "."     (the fixing ability, when the helper is the fix)
    object     := HERO "had" A-OBJECT "." | HIS RELATIVE "had given" HIM A-OBJECT "." | HIS "mom packed" FOOD ...
    extra      := HE "also took" HIS OBJECT2 "."  (a second object: the fix or a distractor)
    goal       := "One" DAY "," HERO "wanted to go to" PLACE "to" ACTIVITY "."
                | HERO "wanted to" ACTIVITY "at" PLACE "." | ...
    come       := HELPER "wanted to come too."
    depart     := "So" GROUP "set off." | "Off" THEY "went." | ...          (GROUP = HERO ["and" HELPER])
    journey    := "On the way," THEY "saw" SIGHT "and" SIGHT "." | ...
    problem    := obstacle reaction worry? doubt? (hint | fix-intro)? fix result? thanks?
    obstacle   := RAIN | HOT-SUN | COLD | HUNGER | LOCKED-GATE | DARK | BIG-DOG | RIVER | LOST-WAY
                | HAT-IN-TREE | MUD | BIG-ROCK                               (2-3 sentences each)
    reaction   := HERO "felt" FEELING "." | HERO "was very" FEELING "." | ...
    worry      := "\"" LINE(obstacle) "\" said" HERO "."
    doubt      := HERO "looked at" HIS DISTRACTOR ", but it could not help." | HELPER "tried to help, but ..."
    hint       := "\"Use your" OBJECT "!\" said" HELPER "."
    fix-intro  := "Then" HERO "remembered" HIS OBJECT "." | "Then" HELPER "had an idea." | ...
    fix        := USE(object, obstacle) | ACTION(helper ability, obstacle)   (names the fix)
    result     := RESULT(obstacle)       e.g. "Soon the rain stopped, and the sun came out again."
    thanks     := "\"Thank you," HELPER "!\" said" HERO "." | "\"I am so glad I brought my" OBJECT "!\" ..."
    resolution := arrival activity ending ending2? moral?
    arrival    := "At last," THEY "got to" PLACE "." | THEY "walked into" PLACE "."   (after a gate)
    activity   := HERO PAST-ACTIVITY TIME "." | HERO "and" HELPER PAST-ACTIVITY "together." | ...
    ending     := "That night," HERO "dreamed about" PLACE "." | THEY "walked home from" PLACE ... | ...
    ending2    := "It was the best day ever." | ...
    moral      := HERO "learned that friends help each other."
                | "From that day on," HERO "always took" HIS OBJECT "with" HIM "."

How the resolution depends on the setup. A story is *planned* before it is written
(:class:`StoryPlan`): first the obstacle (uniform over the twelve), then the fix, drawn from
what can solve it: the objects whose ``solves`` set holds the obstacle (an umbrella for rain
or hot sun, a key for a locked gate, a lamp for a dark path, a ball or a bone for a big dog,
...) and the helper animals with a matching ability (an owl or a cat sees in the dark, a duck
or a turtle swims, a bear or an elephant is strong, a giraffe is tall, ...); a helper in 45%
of the stories where both kinds can, always for the big rock. The fix is then *introduced in
the setup* (the hero owns the object, or the helper is the hero's friend), next to
distractors that cannot solve the obstacle (a second object; a helper without the ability),
and the place fits the obstacle (a locked gate needs a place with a gate). After the
obstacle the story names the fix again and uses it in the obstacle's own wording, so which
earlier entity comes back, and how, is decided by the obstacle; the resolution refers back
to the goal (the activity) and the place. Pronouns follow the hero's and the helper's gender
(he/she), ``they`` for the hero and helper together, ``it``/``them`` for objects.

Story ``i`` of a (seed, split) depends on (seed, split, i) only: it reads its own row of
uniforms drawn by ``np.random.default_rng([seed, SPLIT_IDS[split], i // BLOCK])`` (see
:func:`iter_story_parts`), so it is the same whatever ``n`` or range it is generated in, and
the train and validation splits differ. Stories longer than :data:`MAX_WORDS` words drop
optional parts (``?`` above) until they fit.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .corpus import word_stats as corpus_stats  # noqa: F401  (re-exported: the corpus stage's count)
from .corpus import _STRIP, words  # noqa: F401  (_STRIP: what a word is stripped of)

SPLIT_IDS = {"train": 0, "validation": 1}
# Story lengths, in words as words() counts them. The slice's 1,000-id byte-level BPE gives about
# 1.54 tokens per word on this corpus (punctuation and rarer names are pieces of their own; up to
# ~1.9 for a story), so 150 words keep nearly every story within a 256-token block.
MIN_WORDS = 60   # the mandatory parts alone come to about 60-70 words
MAX_WORDS = 150  # hard cap: optional parts are dropped until a story fits
BLOCK = 256      # stories per random block (see iter_story_parts)
_ROW = 96        # uniforms per story in a block; a story uses about 40 (at most ~70)

# ---------------------------------------------------------------------------------------------
# Lexicon
# ---------------------------------------------------------------------------------------------

GIRL_NAMES = (
    "Lily", "Mia", "Emma", "Anna", "Lucy", "Sara", "Ella", "Zoe", "Amy", "Rose", "Daisy", "Ruby",
    "Grace", "Chloe", "Ava", "Ivy", "Nora", "Molly", "Lena", "Maya", "Sophie", "Hannah", "Julia",
    "Clara", "Alice", "Bella", "Emily", "Kate", "Jenny", "Tina", "Nina", "Olivia", "Sue", "Poppy",
    "Holly", "Hazel", "Iris", "Luna", "Stella", "Lila", "Eva", "Jane", "Kim", "Laura", "Megan",
    "Abby", "Fiona", "Gina", "Heidi", "Jill", "Kara", "Lola", "Mary", "Nell", "Pam", "Rita",
    "Sally", "Tess", "Vera", "Wendy",
)
BOY_NAMES = (
    "Tom", "Ben", "Sam", "Max", "Leo", "Jack", "Tim", "Jake", "Luke", "Noah", "Finn", "Owen",
    "Adam", "Alex", "Dan", "Eli", "Gus", "Harry", "Henry", "Ian", "Joe", "Kevin", "Liam", "Mark",
    "Ned", "Oscar", "Paul", "Pete", "Ray", "Rob", "Theo", "Toby", "Will", "Zack", "Bob", "Charlie",
    "Billy", "Danny", "Eddie", "Felix", "George", "Hugo", "Jamie", "Kyle", "Louis", "Milo", "Nick",
    "Oliver", "Peter", "Ryan", "Simon", "Ted", "Victor", "Walter", "Arthur", "Carl", "Dylan",
    "Evan", "Frank", "Jim",
)
PET_NAMES = (  # helper animals; their gender is drawn
    "Pip", "Coco", "Bubbles", "Patch", "Buttons", "Sunny", "Pepper", "Biscuit", "Ziggy", "Dot",
    "Fluffy", "Twinkle", "Snowy", "Rusty", "Ginger", "Peanut", "Bingo", "Whiskers", "Nibbles",
    "Tufty", "Squeaky", "Bramble", "Clover", "Pebble", "Puddles", "Scout", "Shadow", "Socks",
    "Sparky", "Tiny", "Wiggles", "Bubba", "Honey", "Dusty", "Freckles",
)

HERO_KINDS = ("bunny", "kitten", "puppy", "mouse", "fox", "bear", "piglet", "duckling", "lamb",
              "hedgehog", "squirrel", "chick")
HUMAN_KIND = {"f": "girl", "m": "boy"}
HERO_ADJS = ("little", "kind", "happy", "brave", "curious", "shy", "clever", "cheerful",
             "friendly", "gentle", "playful", "busy", "silly", "sweet", "smart", "young", "funny",
             "small", "lively", "careful", "helpful", "quiet", "cute", "bold")
HELPER_ADJS = ("wise", "old", "fluffy", "big", "little", "kind", "funny", "happy", "clever",
               "gentle", "quick", "friendly", "brave", "chatty", "sleepy", "good")
COLOURS = ("red", "blue", "green", "yellow", "pink", "purple", "orange", "brown", "white",
           "black", "gray", "golden", "silver", "bright")
OBJ_ADJS = ("old", "new", "little", "big", "shiny", "favorite", "special", "lucky")
RELATIVES = ("grandma", "grandpa", "mom", "dad", "aunt", "uncle", "big sister", "big brother")
FAMILIES = ("mom and dad", "grandma", "big sister", "little brother", "mom", "dad",
            "grandpa and grandma", "two little sisters", "big family")
HOMES = ("a little house by the woods", "a small village", "a quiet town", "a blue house on a hill",
         "a cozy cottage", "a busy city", "a little house near the sea", "a yellow house with a garden",
         "a tiny house under a big tree", "a farm near the hills")
HOBBIES = ("sing songs", "draw pictures", "read books", "dance in the kitchen", "play with blocks",
           "jump in puddles", "collect pretty stones", "look at the stars", "build tall towers",
           "help in the garden", "play hide and seek", "ride {his} bike", "climb trees",
           "make up funny songs", "paint with bright colors", "count the clouds", "watch the birds",
           "play the drum", "tell jokes", "run very fast", "hop and skip", "do puzzles",
           "play with {his} toy cars", "splash in the bath", "whistle happy tunes")
DAYS = ("day", "morning", "sunny morning", "bright morning", "Saturday", "Sunday", "summer day",
        "spring morning", "warm afternoon", "fine day", "lovely day", "quiet afternoon")
SIGHTS = ("a red barn", "some fat cows", "a big old tree", "pretty flowers", "a little stone bridge",
          "a windmill", "a field of sunflowers", "a busy ant hill", "some sheep", "a small pond",
          "a yellow butterfly", "a noisy crow", "a tall fence", "a snail on a leaf", "a family of ducks",
          "a pile of leaves", "a blue bird in a nest", "some children playing", "a baker with fresh bread",
          "a sleepy fox", "a row of houses", "a farmer on a tractor", "a cat on a wall", "some busy bees",
          "a green frog", "a goat eating grass", "a big white cloud", "a bus full of people",
          "a man selling balloons", "a horse in a field")
FEELINGS = {"sad": ("sad", "worried", "upset", "unhappy"), "scared": ("scared", "afraid", "nervous")}
TIMES = ("all day", "all afternoon", "until dark", "for a long time", "for hours", "until lunch")


@dataclass(frozen=True)
class Place:
    np: str                              # noun phrase, used after "to", "at", "into", "about"
    acts: tuple[tuple[str, str], ...]    # (infinitive, past) activity phrases
    gate: bool = False                   # can hold a locked gate


PLACES = (
    Place("the park", (("play on the swings", "played on the swings"), ("fly a kite", "flew a kite"),
                       ("play ball with the other children", "played ball with the other children")), True),
    Place("the beach", (("build a big sand castle", "built a big sand castle"),
                        ("look for shells", "looked for shells"), ("swim in the sea", "swam in the sea"))),
    Place("the lake", (("feed the ducks", "fed the ducks"), ("catch fish", "caught fish"),
                       ("skip stones on the water", "skipped stones on the water"))),
    Place("the farm", (("see the baby goats", "saw the baby goats"), ("ride a pony", "rode a pony"),
                       ("collect eggs from the hens", "collected eggs from the hens")), True),
    Place("the zoo", (("see the lions", "saw the lions"), ("watch the monkeys", "watched the monkeys"),
                      ("look at the penguins", "looked at the penguins")), True),
    Place("the garden", (("pick flowers", "picked flowers"), ("plant seeds", "planted seeds"),
                         ("look for ladybugs", "looked for ladybugs")), True),
    Place("the castle", (("meet the king and queen", "met the king and queen"),
                         ("see the tall towers", "saw the tall towers")), True),
    Place("the library", (("read a book about dragons", "read a book about dragons"),
                          ("listen to a story", "listened to a story"))),
    Place("the market", (("buy fresh bread", "bought fresh bread"),
                         ("buy some ripe plums", "bought some ripe plums"))),
    Place("the bakery", (("buy a birthday cake", "bought a birthday cake"),
                         ("eat a warm bun", "ate a warm bun"))),
    Place("the playground", (("go down the slide", "went down the slide"),
                             ("play on the seesaw", "played on the seesaw")), True),
    Place("the top of the hill", (("watch the sunset", "watched the sunset"),
                                  ("roll down the soft grass", "rolled down the soft grass"))),
    Place("the meadow", (("chase butterflies", "chased butterflies"), ("pick daisies", "picked daisies"),
                         ("have a picnic", "had a picnic"))),
    Place("the pond", (("look at the frogs", "looked at the frogs"),
                       ("sail a paper boat", "sailed a paper boat"))),
    Place("the mountain", (("see the snow", "saw the snow"),
                           ("look at the whole valley", "looked at the whole valley"))),
    Place("the village", (("visit {his} cousin", "visited {his} cousin"), ("see the fair", "saw the fair"))),
    Place("grandma's house", (("bake cookies with grandma", "baked cookies with grandma"),
                              ("hear grandma's stories", "heard grandma's stories")), True),
    Place("the circus", (("see the clowns", "saw the clowns"),
                         ("watch the acrobats", "watched the acrobats"))),
    Place("the fair", (("ride the merry go round", "rode the merry go round"),
                       ("eat pink candy floss", "ate pink candy floss"))),
    Place("the museum", (("see the dinosaur bones", "saw the dinosaur bones"),
                         ("look at old paintings", "looked at old paintings"))),
    Place("the island", (("find the hidden treasure", "found the hidden treasure"),
                         ("dig in the warm sand", "dug in the warm sand"))),
    Place("the cave", (("find shiny crystals", "found shiny crystals"), ("hear the echo", "heard the echo"))),
    Place("the orchard", (("pick apples", "picked apples"),
                          ("pick sweet cherries", "picked sweet cherries")), True),
    Place("the school", (("show {his} drawing to the teacher", "showed {his} drawing to the teacher"),
                         ("play with {his} friends", "played with {his} friends")), True),
    Place("the toy shop", (("buy a new toy", "bought a new toy"),
                           ("look at the toy trains", "looked at the toy trains"))),
    Place("the ice cream shop", (("eat a big ice cream", "ate a big ice cream"),
                                 ("try a new flavor", "tried a new flavor"))),
    Place("the harbor", (("see the big ships", "saw the big ships"),
                         ("watch the fishing boats", "watched the fishing boats"))),
    Place("the station", (("see the trains", "saw the trains"),
                          ("wave at the train driver", "waved at the train driver"))),
    Place("the old tree house", (("play pirates", "played pirates"), ("read comics", "read comics"))),
    Place("the big field", (("fly a kite", "flew a kite"), ("play tag", "played tag"))),
    Place("the waterfall", (("see the rainbow in the spray", "saw the rainbow in the spray"),
                            ("listen to the roaring water", "listened to the roaring water"))),
    Place("the pet shop", (("see the puppies", "saw the puppies"),
                           ("buy food for the fish", "bought food for the fish"))),
)


@dataclass(frozen=True)
class Tool:
    noun: str                 # the word that names it (appears whenever it is used)
    solves: frozenset[str]    # obstacle keys it solves
    plural: bool = False
    food: bool = False        # introduced as packed food
    prefix: str = ""          # fixed word before the noun ("water" bottle)


TOOLS = (
    Tool("umbrella", frozenset({"rain", "sun"})),
    Tool("raincoat", frozenset({"rain"})),
    Tool("cap", frozenset({"sun"})),
    Tool("bottle", frozenset({"sun"}), prefix="water"),
    Tool("scarf", frozenset({"cold"})),
    Tool("mittens", frozenset({"cold"}), plural=True),
    Tool("sweater", frozenset({"cold"})),
    Tool("sandwich", frozenset({"hungry"}), food=True),
    Tool("apple", frozenset({"hungry"}), food=True),
    Tool("cookies", frozenset({"hungry"}), plural=True, food=True),
    Tool("muffin", frozenset({"hungry"}), food=True),
    Tool("key", frozenset({"gate"})),
    Tool("lamp", frozenset({"dark"})),
    Tool("flashlight", frozenset({"dark"})),
    Tool("lantern", frozenset({"dark"})),
    Tool("ball", frozenset({"dog"})),
    Tool("bone", frozenset({"dog"}), prefix="chew"),
    Tool("rope", frozenset({"river"})),
    Tool("boat", frozenset({"river"}), prefix="rubber"),
    Tool("map", frozenset({"lost"})),
    Tool("compass", frozenset({"lost"})),
    Tool("stick", frozenset({"tree"}), prefix="long"),
    Tool("net", frozenset({"tree"}), prefix="butterfly"),
    Tool("boots", frozenset({"mud"}), plural=True),
)
TOOL_BY_NOUN = {t.noun: t for t in TOOLS}


@dataclass(frozen=True)
class HelperKind:
    animal: str
    abilities: frozenset[str]
    food: str = ""   # what it shares when the hero is hungry


HELPER_KINDS = (
    HelperKind("bird", frozenset({"fly"})),
    HelperKind("owl", frozenset({"fly", "dark"})),
    HelperKind("parrot", frozenset({"fly"})),
    HelperKind("cat", frozenset({"dark", "climb"})),
    HelperKind("monkey", frozenset({"climb", "food"}), "bananas"),
    HelperKind("squirrel", frozenset({"climb", "food"}), "nuts"),
    HelperKind("duck", frozenset({"swim", "fly"})),
    HelperKind("turtle", frozenset({"swim"})),
    HelperKind("beaver", frozenset({"swim"})),
    HelperKind("frog", frozenset({"swim"})),
    HelperKind("dog", frozenset({"sniff", "dog"})),
    HelperKind("puppy", frozenset({"sniff", "dog"})),
    HelperKind("bear", frozenset({"strong", "food"}), "honey"),
    HelperKind("elephant", frozenset({"strong", "spray"})),
    HelperKind("horse", frozenset({"strong"})),
    HelperKind("giraffe", frozenset({"tall"})),
    HelperKind("mouse", frozenset({"sniff"})),
    HelperKind("lamb", frozenset()),
    HelperKind("hedgehog", frozenset()),
    HelperKind("bunny", frozenset()),
    HelperKind("goat", frozenset({"climb"})),
)
ABILITY_PHRASES = {
    "fly": ("fly high in the sky", "fly faster than the wind"),
    "dark": ("see in the dark", "see well even at night"),
    "climb": ("climb the tallest trees", "climb up anything"),
    "swim": ("swim very well", "swim across any water"),
    "sniff": ("smell things from far away", "follow any smell"),
    "dog": ("make friends with any dog",),
    "strong": ("lift very heavy things", "push very hard"),
    "tall": ("reach the highest branches", "see over every fence"),
    "spray": ("spray water with {hhis} long trunk",),
    "food": ("always find something good to eat",),
}


@dataclass(frozen=True)
class Obstacle:
    key: str
    text: tuple[str, ...]              # the obstacle sentence(s)
    feeling: str                       # key of FEELINGS
    worry: tuple[str, ...]             # what the hero says
    abilities: dict[str, tuple[str, ...]]  # helper ability -> action templates
    result: tuple[str, ...]            # after the fix
    at_place: bool = False             # happens at the place (needs Place.gate)


OBSTACLES = (
    Obstacle("rain",
             ("But then dark clouds came, and it began to rain.", "Soon it began to rain hard.",
              "Suddenly, cold rain started to fall."),
             "sad", ("\"Oh no, {we} will get all wet!\" said {Hero}.", "\"I do not like the rain,\" said {Hero}."),
             {},
             ("Soon the rain stopped, and the sun came out again.", "The rain did not get {Hero} wet at all.")),
    Obstacle("sun",
             ("The sun was very hot, and {Hero} felt tired.", "Soon the sun got very hot."),
             "sad", ("\"It is too hot!\" said {Hero}.", "\"I need some shade,\" said {Hero}."),
             {"spray": ("{Helper} filled {hhis} trunk with water from a stream and sprayed {Hero}.",
                        "{Helper} sprayed cool water over {Hero} with {hhis} trunk.")},
             ("Now {Hero} did not feel hot anymore.", "{Hero} felt cool and fresh again.")),
    Obstacle("cold",
             ("Then a cold wind began to blow.", "The air got very cold, and {Hero} began to shiver."),
             "sad", ("\"Brr, I am so cold!\" said {Hero}.", "\"I wish I was warm,\" said {Hero}."),
             {},
             ("Soon {Hero} felt warm again.", "Now the cold wind did not bother {him}.")),
    Obstacle("hungry",
             ("After a long walk, {Hero} felt very hungry.",
              "Soon {his} tummy began to rumble. {He} was very hungry."),
             "sad", ("\"I am so hungry, I cannot walk any more,\" said {Hero}.", "\"I need something to eat,\" said {Hero}."),
             {"food": ("{Helper} smiled and shared {hhis} {hfood} with {Hero}.",
                       "{Helper} ran off and came back with some {hfood} for {Hero}.")},
             ("Now {Hero} had lots of energy again.", "{Hero} felt strong and happy again.")),
    Obstacle("gate",
             ("But when {they} got to {place}, the gate was locked.", "At {place}, the big gate was locked."),
             "sad", ("\"How will {we} get in?\" asked {Hero}.", "\"Oh no, the gate is shut!\" said {Hero}."),
             {"climb": ("{Helper} climbed over the gate and opened it from the other side.",
                        "{Helper} climbed up the wall, jumped down inside and pulled the gate open.")},
             ("The gate swung open with a creak.", "The gate opened, and {they} could go inside."),
             at_place=True),
    Obstacle("dark",
             ("The path went into a dark forest.", "Soon it grew dark, and {they} could not see the path."),
             "scared", ("\"I cannot see anything!\" said {Hero}.", "\"It is so dark,\" whispered {Hero}."),
             {"dark": ("{Helper} could see in the dark, so {hhe} led {Hero} along the path.",
                       "{Helper} said, \"Follow me, I can see the way.\" {Hero} followed {hhim}.")},
             ("Soon {they} {were} out of the dark.", "The path was easy to see now.")),
    Obstacle("dog",
             ("Suddenly, a big dog jumped onto the path and barked.",
              "On the way, a big brown dog stood in the road and growled."),
             "scared", ("\"I am scared of that dog,\" said {Hero}.", "\"Go away, dog!\" cried {Hero}."),
             {"strong": ("{Helper} stood up tall and made a big noise. The dog ran away.",
                         "{Helper} stepped in front of {Hero}, and the dog ran off."),
              "dog": ("{Helper} barked a friendly hello. The big dog wagged its tail and let {them} pass.",
                      "{Helper} talked to the big dog, and soon the two dogs were playing.")},
             ("Now the path was clear.", "The big dog did not bother {them} again.")),
    Obstacle("river",
             ("Then {they} came to a wide river with no bridge.", "Soon {they} came to a deep, fast river."),
             "sad", ("\"How will {we} get across?\" asked {Hero}.", "\"I cannot swim that far,\" said {Hero}."),
             {"swim": ("{Helper} swam across and found a place where the water was not deep. {Hero} walked over there.",
                       "{Helper} swam next to {Hero} and showed {him} the safe way across.")},
             ("Soon {they} {were} safe on the other side.", "At last, {they} reached the other side of the river.")),
    Obstacle("lost",
             ("Soon {they} did not know which way to go.",
              "Soon the paths all looked the same, and {they} {were} lost."),
             "sad", ("\"I think {we_are} lost,\" said {Hero}.", "\"Which way is it?\" asked {Hero}."),
             {"fly": ("{Helper} flew up high into the sky and saw {place}. \"This way!\" {hhe} called.",
                      "{Helper} flew above the trees and showed {Hero} the right road."),
              "sniff": ("{Helper} sniffed the ground and found the right path.",
                        "{Helper} put {hhis} nose to the ground and followed the smell of {place}.")},
             ("Now {they} knew which way to go.", "Soon {they} {were} on the right path again.")),
    Obstacle("tree",
             ("Then the wind blew {his} hat up into a tall tree.",
              "Suddenly, the wind took {his} hat, and it got stuck high in a tree."),
             "sad", ("\"My hat! I cannot reach it,\" said {Hero}.", "\"I need my hat back,\" said {Hero}."),
             {"fly": ("{Helper} flew up and brought the hat back down.",),
              "climb": ("{Helper} climbed up the tree and got the hat.",),
              "tall": ("{Helper} reached up with {hhis} long neck and took the hat from the branch.",)},
             ("{Hero} put the hat back on {his} head.", "{Hero} was happy to have {his} hat back.")),
    Obstacle("mud",
             ("Then the path turned into deep, sticky mud.",
              "Soon the road was full of deep mud."),
             "sad", ("\"I will get stuck in the mud,\" said {Hero}.", "\"Yuck, so much mud!\" said {Hero}."),
             {"strong": ("{Helper} was big and strong. {hHe} carried {Hero} over the mud on {hhis} back.",)},
             ("Soon {they} {were} past the mud.", "Now {Hero} had clean feet.")),
    Obstacle("rock",
             ("Then {they} saw a big rock in the middle of the path.", "A huge rock had fallen onto the path."),
             "sad", ("\"The rock is too big,\" said {Hero}.", "\"How can {we} get past?\" asked {Hero}."),
             {"strong": ("{Helper} pushed the rock with all {hhis} might, and it rolled away.",
                         "{Helper} was very strong. {hHe} pushed and pushed until the rock moved.")},
             ("Now the path was clear.", "{They} walked on happily.")),
)
OBSTACLE_BY_KEY = {o.key: o for o in OBSTACLES}

# How each object is used against each obstacle it solves ({obj}: its noun).
TOOL_USE = {
    ("umbrella", "rain"): ("{Hero} opened {his} {obj} and held it over {them}.",
                           "{Hero} put up {his} big {obj}, and {they} walked on under it."),
    ("umbrella", "sun"): ("{Hero} opened {his} {obj} to make some shade.",
                          "{Hero} held {his} {obj} up to keep the hot sun away."),
    ("raincoat", "rain"): ("{Hero} put on {his} {obj} and pulled up the hood.",),
    ("cap", "sun"): ("{Hero} put on {his} {obj} to keep the sun off {his} face.",),
    ("bottle", "sun"): ("{Hero} took out {his} {obj} and drank some cool water.",),
    ("scarf", "cold"): ("{Hero} wrapped {his} soft {obj} around {his} neck.",),
    ("mittens", "cold"): ("{Hero} put on {his} warm {obj}.",),
    ("sweater", "cold"): ("{Hero} put on {his} cozy {obj}.",),
    ("sandwich", "hungry"): ("{Hero} took out {his} {obj} and ate it.", "{Hero} sat down and ate {his} {obj}."),
    ("apple", "hungry"): ("{Hero} took out {his} {obj} and ate it.", "{Hero} ate {his} crunchy {obj}."),
    ("cookies", "hungry"): ("{Hero} took out {his} {obj} and ate them.",),
    ("muffin", "hungry"): ("{Hero} took out {his} {obj} and ate it.",),
    ("key", "gate"): ("{Hero} took out {his} {obj} and put it in the lock. It fit!",
                      "{Hero} turned {his} {obj} in the lock."),
    ("lamp", "dark"): ("{Hero} turned on {his} {obj}, and it lit up the path.",),
    ("flashlight", "dark"): ("{Hero} switched on {his} {obj}, and a bright light showed the way.",),
    ("lantern", "dark"): ("{Hero} lit {his} {obj}, and it glowed warm and bright.",),
    ("ball", "dog"): ("{Hero} threw {his} {obj} far away. The dog ran after it.",
                      "{Hero} rolled {his} {obj} to the dog. The dog wagged its tail and played with it."),
    ("bone", "dog"): ("{Hero} gave the dog {his} {obj}. The dog took it and ran off happily.",),
    ("rope", "river"): ("{Hero} tied {his} {obj} to a tree and held on to it as {they} walked across on the stones.",),
    ("boat", "river"): ("{Hero} put {his} {obj} on the water, and {they} paddled across.",),
    ("map", "lost"): ("{Hero} looked at {his} {obj} and found the right road.",
                      "{Hero} opened {his} {obj}. It showed the way to {place}."),
    ("compass", "lost"): ("{Hero} looked at {his} {obj}, and it pointed the way.",),
    ("stick", "tree"): ("{Hero} used {his} {obj} to knock the hat down.",),
    ("net", "tree"): ("{Hero} reached up with {his} {obj} and caught the hat.",),
    ("boots", "mud"): ("{Hero} put on {his} {obj} and stomped through the mud.",),
}

# ---------------------------------------------------------------------------------------------
# Templates of the parts (the slots are filled in _render)
# ---------------------------------------------------------------------------------------------

T_INTRO = (
    "Once upon a time, there was {a_kind} named {Hero}.",
    "There once was {a_kind} called {Hero}.",
    "{Hero} was {a_kind} from {home}.",
    "Once there was {a_kind}. {His} name was {Hero}.",
    "{Hero} was {a_kind}.",
)
T_DETAIL = (
    "{He} liked to {hobby}.",
    "Every day, {he} liked to {hobby}.",
    "{His} favorite color was {colour}.",
    "{He} lived with {his} {family}.",
    "{He} lived in {home}.",
    "More than anything, {he} loved to {hobby}.",
)
T_HELPER = (
    "{Hero} had a friend, {a_hdesc} named {Helper}.",
    "{His} best friend was {a_hdesc} called {Helper}.",
    "{Hero} and {Helper} the {hkind} were best friends.",
    "{Hero} had a good friend named {Helper}. {Helper} was {a_hdesc}.",
)
T_TRAIT = ("{Helper} could {ability}.", "{Helper} was special, because {hhe} could {ability}.")
T_OBJECT = (
    "{Hero} had {a_objdesc}. {He} took {it} everywhere.",
    "{His} {relative} had given {him} {a_objdesc}.",
    "{Hero} always carried {his} {objdesc} in {his} bag.",
    "{Hero} had {a_objdesc} that {he} loved very much.",
)
T_FOOD = (
    "{His} mom packed {a_objdesc} in {his} bag.",
    "{Hero} put {a_objdesc} in {his} bag for later.",
)
T_EXTRA = ("{He} also took {his} {o2desc}.", "{He} also had {a_o2desc} with {him}.")
T_GOAL = (
    "One {day}, {Hero} wanted to go to {place} to {act}.",
    "One {day}, {Hero} said, \"I want to {act} at {place}!\"",
    "{Hero} wanted to {act} at {place}.",
)
T_COME = ("{Helper} wanted to come too.", "\"Can I come with you?\" asked {Helper}. \"Yes!\" said {Hero}.")
T_DEPART = (
    "So {group} set off.",
    "{Group} put on {their} shoes and went out.",
    "{Group} said goodbye to {his} mom.",
    "After breakfast, {they} set off.",
    "Off {they} went.",
)
T_JOURNEY = (
    "On the way, {they} saw {sight} and {sight2}.",
    "{They} walked past {sight}.",
    "As {they} walked, {they} sang a happy song.",
    "{They} skipped along the road and looked at {sight}.",
)
T_REACT = ("{Hero} felt {feeling}.", "{Hero} was very {feeling}.", "{Hero} stopped. {He} felt {feeling}.")
T_DOUBT_OBJ = ("{Hero} looked at {his} {o2}, but {it2} could not help.",
               "{His} {o2} would not help with this.")
T_DOUBT_HELPER = ("{Helper} wanted to help, but {hhe} did not know what to do.",
                  "{Helper} tried to help, but it was no use.")
T_FIX_OBJ = ("Then {Hero} remembered {his} {obj}.", "Then {Hero} had an idea. {He} still had {his} {obj}!",
             "Luckily, {Hero} had brought {his} {obj}.")
T_HINT = ("\"What about your {obj}?\" asked {Helper}.", "\"Use your {obj}!\" said {Helper}.")
T_FIX_HELPER = ("Then {Helper} had an idea.", "\"I can help!\" said {Helper}.",
                "\"Do not worry,\" said {Helper}. \"I know what to do.\"")
T_THANKS_OBJ = ("\"I am so glad I brought my {obj}!\" said {Hero}.", "{Hero} was glad {he} had {his} {obj} with {him}.")
T_THANKS_HELPER = ("\"Thank you, {Helper}!\" said {Hero}.", "{Hero} gave {Helper} a big hug. \"Thank you!\" {he} said.")
T_ARRIVE = ("At last, {they} got to {place}.", "Soon {they} {were} at {place}.",
            "Then {they} arrived at {place}.")
T_ARRIVE_GATE = ("{They} walked into {place}.", "{Group} ran into {place}.")
T_ACT = ("{Hero} {act_past} {time}.", "At {place}, {Hero} {act_past}.", "{Hero} {act_past}. It was so much fun!")
T_ACT_HELPER = ("{Hero} and {Helper} {act_past} together.", "{Hero} {act_past}, and {Helper} watched.",
                "{Hero} and {Helper} {act_past} {time}.")
T_ENDING = (
    "That night, {Hero} dreamed about {place}.",
    "Then {they} walked home from {place}, tired and happy.",
    "{Hero} smiled. The day at {place} had been wonderful.",
    "{Hero} would always remember the day at {place}.",
    "Later, {Hero} told {his} mom all about {place}.",
)
T_ENDING2 = ("It was the best day ever.", "{Hero} was very happy.", "What a good day it was!")
T_MORAL_HELPER = ("{Hero} learned that friends help each other.",
                  "{Hero} knew that {Helper} was the best friend in the world.")
T_MORAL_OBJ = ("From that day on, {Hero} always took {his} {obj} with {him}.",
               "{Hero} learned that it is good to be ready.")

# Words the code inserts outside the templates (articles, pronouns, agreement).
_GLUE = ("a", "an", "and", "he", "she", "him", "her", "his", "they", "them", "their", "was", "were",
         "we", "i", "am", "are", "it", "the", "some", "pair", "of")

# How often each optional part is written.
P = {"detail": 0.3, "trait": 0.35, "come": 0.2, "journey": 0.25, "worry": 0.3, "doubt": 0.35,
     "doubt_helper": 0.2, "hint": 0.3, "ending2": 0.25, "moral": 0.3, "fix_intro": 0.5,
     "result": 0.5, "thanks": 0.5}

# Optional parts, in the order they are dropped when a story is too long.
_DROP_ORDER = ("journey", "detail", "ending2", "come", "worry", "result", "thanks", "moral", "trait",
               "doubt", "hint", "extra")


# ---------------------------------------------------------------------------------------------
# Planning and rendering
# ---------------------------------------------------------------------------------------------

class _Draw:
    """Uniform draws for one story: a row of floats, then (rarely) more from an overflow generator."""

    __slots__ = ("_more", "_gen", "_u", "_k")

    def __init__(self, row: list[float], more: Callable[[], np.random.Generator]):
        self._u, self._k, self._more, self._gen = row, 0, more, None

    def unit(self) -> float:
        if self._k == len(self._u):
            if self._gen is None:
                self._gen = self._more()
            self._u, self._k = self._gen.random(_ROW).tolist(), 0
        self._k += 1
        return self._u[self._k - 1]

    def choice(self, seq):
        return seq[int(self.unit() * len(seq))]

    def chance(self, p: float) -> bool:
        return self.unit() < p


@dataclass(frozen=True)
class StoryPlan:
    """What a story is about, drawn before any sentence is written."""

    hero: str
    hero_gender: str             # "f" or "m"
    hero_kind: str
    helper: str | None           # the friend's name, if there is one
    helper_gender: str | None
    helper_kind: str | None
    objects: tuple[str, ...]     # object nouns the hero carries (the first is introduced first)
    place: str
    goal: str                    # the activity, as the goal sentence words it (infinitive)
    obstacle: str                # key of OBSTACLES
    fix: str                     # the entity that solves the obstacle: the helper's name or an object noun
    fix_kind: str                # "helper" or "object"

    def entities(self) -> tuple[str, ...]:
        """The setup's entities that could be the fix: the helper and the objects."""
        return ((self.helper,) if self.helper else ()) + self.objects


@dataclass(frozen=True)
class Story:
    plan: StoryPlan
    parts: tuple[tuple[str, str], ...]   # (part label, its sentences), in story order

    @property
    def text(self) -> str:
        return " ".join(t for _, t in self.parts)


def solves(plan: StoryPlan, entity: str) -> bool:
    """Whether ``entity`` (the plan's helper name or one of its object nouns) solves its obstacle."""
    if entity == plan.helper:
        kind = next(k for k in HELPER_KINDS if k.animal == plan.helper_kind)
        return bool(kind.abilities & OBSTACLE_BY_KEY[plan.obstacle].abilities.keys())
    return plan.obstacle in TOOL_BY_NOUN[entity].solves


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _plan(d: _Draw) -> tuple[StoryPlan, dict]:
    """Draw the plan; also returns the drawn details the renderer needs (kinds, adjectives)."""
    obstacle = d.choice(OBSTACLES)
    tools = [t for t in TOOLS if obstacle.key in t.solves]
    helpers = [k for k in HELPER_KINDS if k.abilities & obstacle.abilities.keys()]
    if not tools or (helpers and d.chance(0.45)):
        fix_kind, helper_kind = "helper", d.choice(helpers)
        fix_tool = None
    else:
        fix_kind, fix_tool = "object", d.choice(tools)
        others = [k for k in HELPER_KINDS if not k.abilities & obstacle.abilities.keys()]
        helper_kind = d.choice(others) if d.chance(0.45) else None
    gender = "f" if d.chance(0.5) else "m"
    hero = d.choice(GIRL_NAMES if gender == "f" else BOY_NAMES)
    hero_kind = HUMAN_KIND[gender] if d.chance(0.55) else d.choice(HERO_KINDS)
    helper = helper_gender = None
    if helper_kind is not None:
        pool = d.choice((PET_NAMES, PET_NAMES, GIRL_NAMES, BOY_NAMES))
        helper = d.choice(pool)
        while helper == hero:
            helper = d.choice(pool)
        helper_gender = "f" if pool is GIRL_NAMES else "m" if pool is BOY_NAMES else ("f" if d.chance(0.5) else "m")
    # Objects: the fixing one (if any), and maybe one that does not solve the obstacle.
    useless = [t for t in TOOLS if obstacle.key not in t.solves]
    objects = [fix_tool] if fix_tool else []
    if fix_tool is None or d.chance(0.4):
        objects.append(d.choice(useless))
    if fix_tool and len(objects) == 2 and d.chance(0.5):
        objects.reverse()
    places = [p for p in PLACES if p.gate] if obstacle.at_place else PLACES
    place = d.choice(places)
    act = d.choice(place.acts)
    plan = StoryPlan(hero=hero, hero_gender=gender, hero_kind=hero_kind, helper=helper,
                     helper_gender=helper_gender, helper_kind=helper_kind.animal if helper_kind else None,
                     objects=tuple(t.noun for t in objects), place=place.np,
                     goal=act[0].format(his="her" if gender == "f" else "his"),
                     obstacle=obstacle.key, fix=helper if fix_kind == "helper" else fix_tool.noun,
                     fix_kind=fix_kind)
    return plan, {"obstacle": obstacle, "act": act, "helper_kind": helper_kind, "tools": objects}


def _objdesc(d: _Draw, tool: Tool) -> tuple[str, str]:
    """(description without article, with article) of an object."""
    r = d.unit()
    adj = d.choice(COLOURS) if r < 0.55 else d.choice(OBJ_ADJS) if r < 0.8 else ""
    if tool.food:
        adj = d.choice(("big", "tasty", "yummy", "fresh", "little", "")) if adj else ""
    words = " ".join(w for w in (adj, tool.prefix, tool.noun) if w)
    if tool.plural:
        return words, ("some " + words if tool.food else "a pair of " + words)
    return words, _article(words)


def _render(plan: StoryPlan, info: dict, d: _Draw) -> list[tuple[str, str, bool]]:
    obstacle: Obstacle = info["obstacle"]
    hk: HelperKind | None = info["helper_kind"]
    tools: list[Tool] = info["tools"]
    f = plan.hero_gender == "f"
    he, him, his = ("she", "her", "her") if f else ("he", "him", "his")
    s = {"Hero": plan.hero, "he": he, "He": he.capitalize(), "him": him, "his": his, "His": his.capitalize(),
         "place": plan.place, "home": d.choice(HOMES)}
    adj = d.choice(HERO_ADJS)
    s["a_kind"] = _article(f"{adj} {plan.hero_kind}")
    if plan.helper:
        hf = plan.helper_gender == "f"
        hhe, hhim, hhis = ("she", "her", "her") if hf else ("he", "him", "his")
        s.update(Helper=plan.helper, hkind=plan.helper_kind, hhe=hhe, hHe=hhe.capitalize(), hhim=hhim,
                 hhis=hhis, hfood=hk.food, a_hdesc=_article(f"{d.choice(HELPER_ADJS)} {plan.helper_kind}"),
                 group=f"{plan.hero} and {plan.helper}", they="they", They="They", them="them",
                 their="their", were="were", we="we", we_are="we are")
    else:
        s.update(group=plan.hero, they=he, They=he.capitalize(), them=him, their=his, were="was", we="I", we_are="I am")
    s["Group"] = s["group"]
    act_inf, act_past = info["act"]
    s["act"], s["act_past"] = act_inf.format(his=his), act_past.format(his=his)

    parts: list[tuple[str, str, bool]] = []

    def add(label: str, templates, optional: bool = False, **extra) -> None:
        text = d.choice(templates).format_map({**s, **extra} if extra else s)
        parts.append((label, text, optional))

    # --- setup
    add("intro", T_INTRO)
    if d.chance(P["detail"]):
        add("detail", T_DETAIL, True, hobby=d.choice(HOBBIES).format(his=his), colour=d.choice(COLOURS),
            family=d.choice(FAMILIES))
    if plan.helper:
        add("helper", T_HELPER)
        if d.chance(P["trait"]):
            abil = sorted(hk.abilities & obstacle.abilities.keys()) if plan.fix_kind == "helper" \
                else sorted(hk.abilities)
            if abil:
                add("trait", T_TRAIT, True, ability=d.choice(ABILITY_PHRASES[d.choice(abil)]).format(hhis=s["hhis"]))
    descs = [_objdesc(d, t) for t in tools]
    for i, (t, (desc, a_desc)) in enumerate(zip(tools, descs)):
        it = "them" if t.plural else "it"
        if i == 0:
            tpl = T_FOOD if t.food else T_OBJECT
            add("object", tpl, objdesc=desc, a_objdesc=a_desc, it=it, relative=d.choice(RELATIVES))
        else:
            add("extra", T_EXTRA, t.noun != plan.fix, o2desc=desc, a_o2desc=a_desc)  # the fix stays
    add("goal", T_GOAL, day=d.choice(DAYS))
    if plan.helper and d.chance(P["come"]):
        add("come", T_COME, True)
    add("depart", T_DEPART)
    if d.chance(P["journey"]):
        add("journey", T_JOURNEY, True, sight=d.choice(SIGHTS), sight2=d.choice(SIGHTS[::-1]))
    # --- obstacle
    add("obstacle", obstacle.text)
    add("reaction", T_REACT, feeling=d.choice(FEELINGS[obstacle.feeling]))
    if d.chance(P["worry"]):
        add("worry", obstacle.worry, True)
    # --- the fix (the other entities are tried first, sometimes)
    fix_tool = TOOL_BY_NOUN[plan.fix] if plan.fix_kind == "object" else None
    others = [t for t in tools if t is not fix_tool]
    if others and d.chance(P["doubt"]):
        o2 = others[0]
        add("doubt", T_DOUBT_OBJ, True, o2=o2.noun, it2="they" if o2.plural else "it")
    if plan.fix_kind == "object":
        if plan.helper and d.chance(P["doubt_helper"]):
            add("doubt", T_DOUBT_HELPER, True)
        if plan.helper and d.chance(P["hint"]):
            add("hint", T_HINT, True, obj=plan.fix)
        elif d.chance(P["fix_intro"]):
            add("fix", T_FIX_OBJ, obj=plan.fix)
        add("fix", TOOL_USE[(plan.fix, obstacle.key)], obj=plan.fix)
    else:
        if d.chance(P["fix_intro"]):
            add("fix", T_FIX_HELPER)
        add("fix", obstacle.abilities[d.choice(sorted(hk.abilities & obstacle.abilities.keys()))])
    if d.chance(P["result"]):
        add("result", obstacle.result, True)
    if d.chance(P["thanks"]):
        add("thanks", T_THANKS_OBJ if plan.fix_kind == "object" else T_THANKS_HELPER, True, obj=plan.fix)
    # --- resolution: back to the goal and the place
    add("arrival", T_ARRIVE_GATE if obstacle.at_place else T_ARRIVE)
    time = d.choice(TIMES)
    if plan.helper and d.chance(0.6):
        add("activity", T_ACT_HELPER, time=time)
    else:
        add("activity", T_ACT, time=time)
    add("ending", T_ENDING)
    if d.chance(P["ending2"]):
        add("ending2", T_ENDING2, True)
    if d.chance(P["moral"]):
        add("moral", T_MORAL_HELPER if plan.fix_kind == "helper" else T_MORAL_OBJ, True, obj=plan.fix)
    return parts


def _story(d: _Draw) -> Story:
    plan, info = _plan(d)
    parts = _render(plan, info, d)
    counts = [len(t.split()) for _, t, _ in parts]  # every token of a template holds a letter
    total = sum(counts)
    for label in _DROP_ORDER:  # too long: drop optional parts, least important first
        if total <= MAX_WORDS:
            break
        keep = []
        for (lab, text, opt), c in zip(parts, counts):
            if opt and lab == label and total > MAX_WORDS:
                total -= c
            else:
                keep.append(((lab, text, opt), c))
        parts, counts = [p for p, _ in keep], [c for _, c in keep]
    return Story(plan, tuple((lab, text) for lab, text, _ in parts))


def generate_story_parts(rng: np.random.Generator) -> Story:
    """One story (its plan and labelled parts) drawn from ``rng``; at most MAX_WORDS words."""
    return _story(_Draw(rng.random(_ROW).tolist(), lambda: rng))


def _check_split(split: str) -> int:
    if split not in SPLIT_IDS:
        raise ValueError(f"unknown split {split!r}; choose from {sorted(SPLIT_IDS)}")
    return SPLIT_IDS[split]


def iter_story_parts(start: int, stop: int, seed: int, split: str = "train") -> Iterator[Story]:
    """Stories ``start .. stop-1`` of (seed, split) with their plans, lazily.

    Story ``i`` reads row ``i % BLOCK`` of the ``(BLOCK, _ROW)`` uniforms that
    ``np.random.default_rng([seed, SPLIT_IDS[split], i // BLOCK])`` draws first (one generator per
    block of stories: creating one per story would cost more than writing the story), and, if
    it needs more, ``np.random.default_rng([seed, SPLIT_IDS[split], i // BLOCK, i % BLOCK])``. So it
    depends on (seed, split, i) only: not on ``start``, ``stop`` or how a caller splits a range.
    """
    sid = _check_split(split)
    if start < 0 or stop < start:
        raise ValueError(f"bad story range [{start}, {stop})")
    seed = int(seed) % 2**64  # SeedSequence takes non-negative words
    return _iter_parts(start, stop, seed, sid)


def _iter_parts(start: int, stop: int, seed: int, sid: int) -> Iterator[Story]:
    block, rows = -1, []
    for i in range(start, stop):
        b, r = divmod(i, BLOCK)
        if b != block:
            block, rows = b, np.random.default_rng([seed, sid, b]).random((BLOCK, _ROW)).tolist()
        yield _story(_Draw(rows[r], lambda b=b, r=r: np.random.default_rng([seed, sid, b, r])))


def generate_story(index: int, seed: int, split: str = "train") -> Story:
    """Story ``index`` of (seed, split), with its plan."""
    return next(iter_story_parts(index, index + 1, seed, split))


def iter_stories(start: int, stop: int, seed: int, split: str = "train") -> Iterator[str]:
    """The texts of stories ``start .. stop-1`` of (seed, split), lazily (for parallel ranges)."""
    return (story.text for story in iter_story_parts(start, stop, seed, split))


def generate_stories(n: int, seed: int, split: str = "train") -> list[str]:
    """The first ``n`` stories of (seed, split); story ``i`` does not depend on ``n``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return list(iter_stories(0, n, seed, split))


def _strings(obj) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, (tuple, list, frozenset, set)):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, Place):
        yield from _strings((obj.np, obj.acts))
    elif isinstance(obj, Tool):
        yield from _strings((obj.noun, obj.prefix))
    elif isinstance(obj, HelperKind):
        yield from _strings((obj.animal, obj.food))
    elif isinstance(obj, Obstacle):
        yield from _strings((obj.text, obj.worry, obj.abilities, obj.result))


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    import re

    sources = (GIRL_NAMES, BOY_NAMES, PET_NAMES, HERO_KINDS, HUMAN_KIND, HERO_ADJS, HELPER_ADJS, COLOURS,
               OBJ_ADJS, RELATIVES, FAMILIES, HOMES, HOBBIES, DAYS, SIGHTS, FEELINGS, TIMES, PLACES, TOOLS,
               HELPER_KINDS, ABILITY_PHRASES, OBSTACLES, TOOL_USE, _GLUE, ("big", "tasty", "yummy", "fresh"),
               T_INTRO, T_DETAIL, T_HELPER, T_TRAIT, T_OBJECT, T_FOOD, T_EXTRA, T_GOAL, T_COME, T_DEPART,
               T_JOURNEY, T_REACT, T_DOUBT_OBJ, T_DOUBT_HELPER, T_FIX_OBJ, T_HINT, T_FIX_HELPER,
               T_THANKS_OBJ, T_THANKS_HELPER, T_ARRIVE, T_ARRIVE_GATE, T_ACT, T_ACT_HELPER, T_ENDING,
               T_ENDING2, T_MORAL_HELPER, T_MORAL_OBJ)
    out: set[str] = set()
    for text in _strings(sources):
        out.update(words(re.sub(r"\{[^}]*\}", " ", text)))
    return frozenset(out)


def vocabulary() -> set[str]:
    """Every word the grammar can emit (lowercase, surrounding punctuation stripped)."""
    return set(_vocabulary())



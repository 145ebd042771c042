"""Text side of the MAL-shaped generator: themes, made-up words, names and synopses.

Everything here is invented: theme vocabularies, romanised syllables (with their katakana, for
the ``Japanese name`` column), company names and sentence templates. A title's text is built
from its theme's vocabulary, its franchise word and character names, its type and its place in
the franchise, so titles of one theme or franchise read alike (see the model in
:mod:`malgen.generate`). All choices go through a seeded :class:`random.Random`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Theme:
    """A taste cluster's content: genre weights, sources, age ratings and vocabulary."""

    key: str
    weight: float  # share of franchises
    genres: dict[str, float]  # the first one is always listed
    sources: dict[str, float]  # tilts the calibrated source mix
    ages: dict[str, float]  # age-rating mix
    roles: tuple[str, ...]
    places: tuple[str, ...]
    threats: tuple[str, ...]
    goals: tuple[str, ...]
    activities: tuple[str, ...]
    adjectives: tuple[str, ...]
    en_nouns: tuple[str, ...]  # for English-looking names and subtitles
    jp_words: tuple[str, ...]  # romanised words for Japanese-looking names


PG13 = "PG-13 - Teens 13 or older"
G = "G - All Ages"
PG = "PG - Children"
R17 = "R - 17+ (violence & profanity)"
RPLUS = "R+ - Mild Nudity"
RX = "Rx - Hentai"
ADULT_THEME = "adult"
ADULT_GENRE = "Hentai"

# fmt: off
THEMES: tuple[Theme, ...] = (
    Theme(
        "space_opera", 0.05,
        {"Sci-Fi": 3, "Space": 3, "Action": 2, "Military": 1, "Drama": 1, "Adventure": 1},
        {"Original": 2, "Manga": 1, "Novel": 1}, {PG13: 3, R17: 1},
        ("starship pilot", "bounty hunter", "fleet admiral", "cadet", "smuggler"),
        ("a frontier colony", "the outer rim", "a derelict space station", "the asteroid belt"),
        ("a rogue battle fleet", "an alien armada", "a galactic empire", "a dying star"),
        ("bring peace to the colonies", "find the lost homeworld", "pay off an old debt"),
        ("dogfights among the asteroids", "hyperspace jumps", "boarding raids on cargo haulers"),
        ("reckless", "stoic", "cynical", "idealistic", "laid-back"),
        ("Galaxy", "Starfleet", "Nebula", "Orbit", "Comet", "Frontier"),
        ("Ginga", "Hoshi", "Sora", "Uchuu", "Ryuusei"),
    ),
    Theme(
        "mecha_war", 0.06,
        {"Mecha": 3, "Sci-Fi": 3, "Military": 2, "Action": 2, "Drama": 1},
        {"Original": 3, "Game": 1, "Manga": 1}, {PG13: 4, R17: 1},
        ("mobile suit pilot", "young engineer", "rebel commander", "test pilot", "soldier"),
        ("a besieged border city", "an orbital fortress", "a war-torn continent", "the front line"),
        ("the Federation army", "an invading machine legion", "a military coup"),
        ("end the war", "protect the refugees", "uncover the truth behind the prototype"),
        ("giant robot battles", "desperate sorties", "secret weapon trials"),
        ("haunted", "hot-blooded", "disciplined", "naive", "defiant"),
        ("Gundam", "Armor", "Frame", "Vanguard", "Legion", "Titan"),
        ("Kikou", "Senki", "Tetsujin", "Kidou", "Sensou"),
    ),
    Theme(
        "school_romance", 0.07,
        {"Romance": 3, "School": 3, "Comedy": 2, "Shoujo": 1, "Slice of Life": 1, "Drama": 1},
        {"Manga": 3, "Light novel": 1, "Visual novel": 1}, {PG13: 4, G: 1},
        ("high school girl", "transfer student", "class president", "shy first-year"),
        ("a seaside high school", "the student council room", "a quiet suburban town"),
        ("a misunderstanding", "a love letter sent to the wrong person", "a rival in love"),
        ("confess before graduation", "keep their love a secret", "win the school festival"),
        ("after-school club activities", "awkward dates", "summer festivals"),
        ("clumsy", "popular", "aloof", "cheerful", "stubborn"),
        ("Love", "Heart", "Spring", "Promise", "Diary", "Kiss"),
        ("Koi", "Kokoro", "Seishun", "Kimi", "Haru", "Gakuen"),
    ),
    Theme(
        "harem_ecchi", 0.04,
        {"Harem": 3, "Ecchi": 3, "Comedy": 2, "Romance": 2, "School": 1, "Fantasy": 1},
        {"Light novel": 2, "Visual novel": 2, "Manga": 2}, {RPLUS: 3, PG13: 2},
        ("ordinary boy", "demon princess", "childhood friend", "dorm manager"),
        ("a girls-only dormitory", "a hot spring inn", "a magic academy"),
        ("a sudden engagement", "an accidental contract", "a curse that attracts girls"),
        ("survive the chaos of daily life", "choose a bride", "break the curse"),
        ("slapstick misunderstandings", "beach episodes", "rivalries for his attention"),
        ("flustered", "bold", "tsundere", "mischievous", "oblivious"),
        ("Harem", "Princess", "Bride", "Paradise", "Heaven"),
        ("Hime", "Yome", "Ore", "Imouto", "Onee-san"),
    ),
    Theme(
        "dark_fantasy", 0.05,
        {"Fantasy": 3, "Action": 2, "Demons": 2, "Supernatural": 2, "Horror": 1, "Seinen": 1},
        {"Manga": 3, "Light novel": 1, "Novel": 1}, {R17: 4, PG13: 1},
        ("cursed swordsman", "witch hunter", "fallen knight", "mercenary"),
        ("a kingdom ruled by fear", "the ruins of a holy city", "a forest of the dead"),
        ("a demon lord", "the eclipse", "a brutal inquisition", "an undying beast"),
        ("take revenge on the king", "lift the curse on the bloodline", "survive one more night"),
        ("bloody sword fights", "pacts with demons", "sieges against monsters"),
        ("grim", "vengeful", "ruthless", "tormented", "silent"),
        ("Blade", "Abyss", "Requiem", "Crown", "Eclipse", "Raven"),
        ("Yami", "Ken", "Akuma", "Shinigami", "Kuroi"),
    ),
    Theme(
        "isekai_adventure", 0.06,
        {"Fantasy": 3, "Adventure": 3, "Magic": 2, "Action": 2, "Game": 1, "Comedy": 1},
        {"Light novel": 3, "Web manga": 1, "Novel": 1, "Manga": 1}, {PG13: 4, RPLUS: 1},
        ("office worker", "gamer", "reincarnated hero", "adventurer", "summoned student"),
        ("another world", "a fantasy realm", "the labyrinth city", "a guild town"),
        ("the Demon King", "a dungeon that swallows adventurers", "a corrupt guild"),
        ("return to the real world", "level up and become the strongest", "live a slow life"),
        ("dungeon crawling", "guild quests", "crafting legendary items"),
        ("overpowered", "lazy", "calculating", "kind-hearted", "unlucky"),
        ("Quest", "Dungeon", "Guild", "Skill", "Level", "Realm"),
        ("Isekai", "Tensei", "Maou", "Yuusha", "Boukensha"),
    ),
    Theme(
        "sports", 0.04,
        {"Sports": 4, "School": 2, "Shounen": 2, "Comedy": 1, "Drama": 1, "Cars": 1},
        {"Manga": 4, "Original": 1}, {PG13: 3, G: 2},
        ("volleyball player", "pitcher", "swimmer", "racing driver", "team captain"),
        ("a struggling school club", "the national tournament", "a mountain pass"),
        ("a championship rival", "an injury", "a team on the brink of disbanding"),
        ("reach the nationals", "beat the undefeated champions", "rebuild the team"),
        ("grueling training camps", "tournament matches", "late-night practice"),
        ("talented", "short-tempered", "hard-working", "calm", "competitive"),
        ("Ace", "Spike", "Stadium", "Goal", "Drift", "Kickoff"),
        ("Yakyuu", "Ace", "Shiai", "Kyousou", "Senshu"),
    ),
    Theme(
        "idol_music", 0.07,
        {"Music": 4, "Slice of Life": 1, "School": 1, "Comedy": 1, "Drama": 1},
        {"Music": 3, "Original": 2, "Game": 2}, {G: 3, PG13: 2},
        ("aspiring idol", "band vocalist", "composer", "trainee singer"),
        ("a small talent agency", "the school music room", "a big concert stage"),
        ("a failed audition", "a rival idol group", "stage fright"),
        ("perform at the dome", "save the music club", "debut as a group"),
        ("dance rehearsals", "live shows", "songwriting sessions"),
        ("energetic", "nervous", "dreamy", "dedicated", "sparkling"),
        ("Live", "Stage", "Melody", "Idol", "Song", "Star"),
        ("Uta", "Oto", "Kirameki", "Hibiki", "Utahime"),
    ),
    Theme(
        "mystery_thriller", 0.035,
        {"Mystery": 3, "Psychological": 2, "Thriller": 2, "Police": 2, "Drama": 1, "Seinen": 1},
        {"Manga": 2, "Novel": 2, "Original": 1}, {R17: 3, PG13: 2},
        ("detective", "prosecutor", "genius student", "journalist", "profiler"),
        ("a city plagued by murders", "an isolated mansion", "a precinct in the capital"),
        ("a serial killer", "a conspiracy inside the police", "a mysterious notebook"),
        ("solve the case", "prove their innocence", "outwit the mastermind"),
        ("mind games", "interrogations", "investigations"),
        ("brilliant", "paranoid", "meticulous", "cold", "curious"),
        ("Case", "Note", "Truth", "Cipher", "Alibi", "Verdict"),
        ("Tantei", "Jiken", "Nazo", "Shinjitsu", "Hanzai"),
    ),
    Theme(
        "historical_samurai", 0.05,
        {"Historical": 3, "Samurai": 2, "Action": 2, "Martial Arts": 1, "Drama": 1, "Military": 1},
        {"Novel": 2, "Manga": 2, "Original": 1}, {PG13: 4, R17: 1},
        ("wandering ronin", "young retainer", "ninja", "warlord's daughter"),
        ("the Edo capital", "a warring-states castle", "a mountain village"),
        ("the shogunate", "a rival clan", "a band of assassins"),
        ("unify the land", "protect the lord", "avenge the master"),
        ("duels at dawn", "castle sieges", "political intrigue"),
        ("honorable", "wandering", "loyal", "proud", "quiet"),
        ("Sword", "Shogun", "Clan", "Blossom", "Dynasty"),
        ("Katana", "Samurai", "Bushi", "Sengoku", "Ninpou"),
    ),
    Theme(
        "slice_of_life", 0.06,
        {"Slice of Life": 3, "Comedy": 3, "School": 1, "Drama": 1},
        {"4-koma manga": 3, "Manga": 2, "Original": 1}, {G: 3, PG13: 2},
        ("high school girl", "cafe owner", "new teacher", "camper", "office lady"),
        ("a sleepy countryside town", "a small cafe", "a seaside village"),
        ("an ordinary school year", "a move to a new town", "the changing seasons"),
        ("enjoy every day", "make new friends", "keep the cafe open"),
        ("tea parties", "camping trips", "cooking together"),
        ("cheerful", "gentle", "spacey", "easygoing", "shy"),
        ("Days", "Sunshine", "Cafe", "Picnic", "Holiday"),
        ("Nichijou", "Yuru", "Hidamari", "Ohisama", "Kissa"),
    ),
    Theme(
        "kids_adventure", 0.09,
        {"Kids": 4, "Adventure": 2, "Comedy": 2, "Fantasy": 1},
        {"Original": 2, "Picture book": 2, "Manga": 2, "Book": 1, "Game": 1}, {G: 4, PG: 3},
        ("little fox", "robot cat", "young explorer", "talking train", "monster tamer"),
        ("a colorful forest", "a toy town", "a cloud kingdom", "an island of monsters"),
        ("a mischievous villain", "a lost treasure map", "a storm"),
        ("find the treasure", "help their friends", "become the best tamer"),
        ("monster battles", "silly adventures", "songs and games"),
        ("curious", "brave", "silly", "friendly", "tiny"),
        ("Friends", "Adventure", "Pocket", "Buddies", "Wonder"),
        ("Chibi", "Mori", "Doubutsu", "Obake", "Pika"),
    ),
    Theme(
        "magical_girl", 0.04,
        {"Magic": 3, "Shoujo": 2, "Fantasy": 2, "Comedy": 1, "Drama": 1, "Romance": 1},
        {"Original": 3, "Manga": 2}, {PG13: 3, G: 2},
        ("magical girl", "fairy mascot", "middle schooler", "witch apprentice"),
        ("a peaceful town", "the dream world", "a magical kingdom"),
        ("the witches of despair", "a dark queen", "stolen wishes"),
        ("collect the magic cards", "save the dream world", "grant a final wish"),
        ("transformations", "battles against witches", "wishes with a price"),
        ("kind", "lonely", "determined", "energetic", "mysterious"),
        ("Magical", "Wish", "Crystal", "Miracle", "Ribbon"),
        ("Mahou", "Shoujo", "Majo", "Kiseki", "Yume"),
    ),
    Theme(
        "supernatural_battle", 0.06,
        {"Supernatural": 3, "Action": 3, "Super Power": 2, "Shounen": 2, "Vampire": 1,
         "Demons": 1},
        {"Manga": 3, "Web manga": 1, "Light novel": 1}, {PG13: 3, R17: 2},
        ("exorcist", "esper", "vampire hunter", "hero academy student", "spirit medium"),
        ("a city full of spirits", "a secret academy", "the underworld"),
        ("curses", "a vampire clan", "villains with quirks", "an evil spirit king"),
        ("become the top hero", "exorcise the curse", "protect humanity"),
        ("power awakenings", "tournament arcs", "battles against spirits"),
        ("fearless", "brooding", "loud", "gifted", "stoic"),
        ("Hero", "Spirit", "Curse", "Blood", "Power", "Soul"),
        ("Jujutsu", "Reikai", "Chou", "Kyuuketsuki", "Onmyou"),
    ),
    Theme(
        "horror", 0.025,
        {"Horror": 3, "Supernatural": 2, "Psychological": 2, "Dementia": 2, "Mystery": 1},
        {"Original": 2, "Novel": 2, "Manga": 2}, {R17: 4, PG13: 1},
        ("transfer student", "ghost", "doll", "village girl", "survivor"),
        ("an abandoned hospital", "a cursed village", "a school at night"),
        ("a vengeful ghost", "a deadly game", "an urban legend"),
        ("escape alive", "break the cycle of deaths", "uncover the village's sin"),
        ("eerie rituals", "nightmares", "disappearances"),
        ("terrified", "unsettling", "twisted", "fragile", "silent"),
        ("Shadow", "Nightmare", "Doll", "Curse", "Silence"),
        ("Kowai", "Yuurei", "Noroi", "Kaidan", "Higurashi"),
    ),
    Theme(
        "martial_arts", 0.035,
        {"Martial Arts": 3, "Action": 3, "Shounen": 2, "Comedy": 1, "Adventure": 1},
        {"Manga": 4, "Original": 1}, {PG13: 4, R17: 1},
        ("martial artist", "street fighter", "kung fu student", "boxer"),
        ("an underground arena", "a mountain dojo", "the world tournament"),
        ("a rival school", "the legendary fist", "a crime syndicate"),
        ("become the strongest", "master the forbidden technique", "avenge the old master"),
        ("tournament bouts", "training in the mountains", "street fights"),
        ("hungry", "tough", "cocky", "honest", "relentless"),
        ("Fist", "Dragon", "Fighter", "Strike", "Tiger"),
        ("Ken", "Kenpou", "Kakutou", "Ryuu", "Tora"),
    ),
    Theme(
        "gag_parody", 0.05,
        {"Comedy": 4, "Parody": 3, "Dementia": 1, "School": 1, "Kids": 1},
        {"Manga": 3, "Original": 2, "4-koma manga": 1}, {PG13: 3, G: 2},
        ("lazy student", "failed superhero", "eccentric teacher", "alien exchange student"),
        ("a chaotic classroom", "a run-down apartment", "a bizarre town"),
        ("absurd misunderstandings", "an alien invasion nobody notices", "a rent deadline"),
        ("get through the week", "pay the rent", "avoid doing homework"),
        ("absurd gags", "parodies of famous shows", "pointless schemes"),
        ("lazy", "deadpan", "eccentric", "dim-witted", "hyper"),
        ("Gag", "Nonsense", "Panic", "Chaos", "Oddball"),
        ("Baka", "Mattaku", "Dame", "Hen", "Ossan"),
    ),
    Theme(
        "drama_josei", 0.025,
        {"Drama": 3, "Romance": 2, "Josei": 2, "Slice of Life": 1, "Shounen Ai": 1,
         "Shoujo Ai": 1},
        {"Manga": 3, "Novel": 2}, {PG13: 4, R17: 1},
        ("young widow", "art student", "pianist", "salaryman", "nurse"),
        ("a rainy city", "a conservatory", "an old apartment building"),
        ("a terminal illness", "an old love returning", "a family secret"),
        ("find a reason to live", "say what was left unsaid", "start over"),
        ("quiet conversations", "memories of the past", "long letters"),
        ("melancholic", "gentle", "wounded", "hopeful", "reserved"),
        ("Memory", "Letter", "Rain", "Season", "Piano"),
        ("Kioku", "Tegami", "Ame", "Namida", "Yakusoku"),
    ),
    Theme(
        ADULT_THEME, 0.077,
        {ADULT_GENRE: 5, "Romance": 1, "School": 1, "Fantasy": 1, "Yaoi": 1, "Yuri": 1},
        {"Visual novel": 3, "Original": 2, "Manga": 2}, {RX: 1},
        ("student", "teacher", "maid", "nurse"),
        ("a private academy", "a mansion", "a hospital"),
        ("a secret", "a bet", "a contract"),
        ("keep the secret", "win the bet", "escape the mansion"),
        ("forbidden encounters", "secret meetings", "games of temptation"),
        ("innocent", "seductive", "shy", "bold"),
        ("Temptation", "Secret", "Lesson", "Desire"),
        ("Himitsu", "Ai", "Yokubou", "Inbou"),
    ),
)
# fmt: on

#: Generic sentences every theme shares (text similarity that says nothing about taste).
GENERIC_SENTENCES: tuple[str, ...] = (
    "The story follows {char} through {activity}.",
    "Along the way, {char} meets a colorful cast of characters.",
    "What begins as an ordinary day soon turns into something much bigger.",
    "Friendship, rivalry and growing up are at the heart of the series.",
    "Each episode brings new challenges and new allies.",
    "Nothing will ever be the same again.",
    "As time passes, {char} begins to understand what truly matters.",
)

PLACEHOLDER_SOURCES = ("Anime News Desk", "Official Site", "Fan Wiki", "Studio Press Release")

SEASON_WORDS = ("2nd Season", "3rd Season", "4th Season", "5th Season")

# (romaji, katakana) syllables for made-up words; the katakana fills 'Japanese name'.
SYLLABLES: tuple[tuple[str, str], ...] = (
    ("ka", "カ"), ("ki", "キ"), ("ku", "ク"), ("ke", "ケ"), ("ko", "コ"), ("sa", "サ"),
    ("shi", "シ"), ("su", "ス"), ("se", "セ"), ("so", "ソ"), ("ta", "タ"), ("chi", "チ"),
    ("tsu", "ツ"), ("te", "テ"), ("to", "ト"), ("na", "ナ"), ("ni", "ニ"), ("nu", "ヌ"),
    ("ne", "ネ"), ("no", "ノ"), ("ha", "ハ"), ("hi", "ヒ"), ("fu", "フ"), ("he", "ヘ"),
    ("ho", "ホ"), ("ma", "マ"), ("mi", "ミ"), ("mu", "ム"), ("me", "メ"), ("mo", "モ"),
    ("ya", "ヤ"), ("yu", "ユ"), ("yo", "ヨ"), ("ra", "ラ"), ("ri", "リ"), ("ru", "ル"),
    ("re", "レ"), ("ro", "ロ"), ("wa", "ワ"), ("ga", "ガ"), ("gi", "ギ"), ("gu", "グ"),
    ("ge", "ゲ"), ("go", "ゴ"), ("za", "ザ"), ("ji", "ジ"), ("zu", "ズ"), ("ze", "ゼ"),
    ("zo", "ゾ"), ("da", "ダ"), ("de", "デ"), ("do", "ド"), ("ba", "バ"), ("bi", "ビ"),
    ("bu", "ブ"), ("be", "ベ"), ("bo", "ボ"), ("a", "ア"), ("i", "イ"), ("u", "ウ"),
    ("e", "エ"), ("o", "オ"), ("kyo", "キョ"), ("ryu", "リュ"), ("sho", "ショ"), ("chu", "チュ"),
    ("ju", "ジュ"), ("n", "ン"),
)  # fmt: skip
_KANA = dict(SYLLABLES)
_ONSETS = [s for s, _ in SYLLABLES if s != "n"]

COMPANY_SUFFIXES = {
    "studio": ("Studio {w}", "{w} Animation", "{w} Pictures", "Studio {w}", "{w} Works", "{w}"),
    "producer": (
        "{w} Media", "{w} Records", "TV {w}", "{w} Entertainment", "{w} Shoten",
        "{w} Music", "{w} Broadcasting", "{w} Soft", "{w} Planning",
    ),
    "licensor": ("{w} Films", "{w} Home Video", "{w} Entertainment USA", "{w} Media Group"),
}  # fmt: skip


def katakana(romaji: str) -> str:
    """Katakana for a romanised word (greedy longest-syllable match; unknown letters dropped)."""
    text, out, i = romaji.lower(), [], 0
    while i < len(text):
        for size in (3, 2, 1):
            part = text[i : i + size]
            if part in _KANA:
                out.append(_KANA[part])
                i += size
                break
        else:
            if text[i] == "-":
                out.append("ー")
            i += 1
    return "".join(out)


def made_up_word(rnd: random.Random, syllables: tuple[int, int] = (2, 4)) -> str:
    """A capitalised invented word such as 'Kazerion' (never a real word by design)."""
    n = rnd.randint(*syllables)
    word = "".join(rnd.choice(_ONSETS) for _ in range(n))
    if rnd.random() < 0.3:
        word += rnd.choice(("n", "ion", "ra", "ga", "to"))
    return word.capitalize()


def company_names(rnd: random.Random, kind: str, n: int) -> list[str]:
    """``n`` distinct invented company names of ``kind`` (studio, producer, licensor)."""
    names: list[str] = []
    seen: set[str] = set()
    patterns = COMPANY_SUFFIXES[kind]
    while len(names) < n:
        name = rnd.choice(patterns).format(w=made_up_word(rnd, (2, 3)))
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


@dataclass
class FranchiseText:
    """What every title of one franchise shares in its text."""

    word: str  # the franchise's invented word
    base_name: str
    base_english: str
    base_japanese: str
    characters: tuple[str, ...]


def franchise_text(rnd: random.Random, theme: Theme) -> FranchiseText:
    """Base names and a small cast for a new franchise of ``theme``."""
    word = made_up_word(rnd)
    jp = rnd.choice(theme.jp_words)
    adj = rnd.choice(theme.adjectives).capitalize()
    noun = rnd.choice(theme.en_nouns)
    pattern = rnd.randrange(5)
    if pattern == 0:
        name, japanese = word, katakana(word)
    elif pattern == 1:
        name, japanese = f"{word} no {jp}", f"{katakana(word)}の{katakana(jp)}"
    elif pattern == 2:
        name, japanese = f"{jp} no {word}", f"{katakana(jp)}の{katakana(word)}"
    elif pattern == 3:
        name, japanese = f"{word}: {adj} {noun}", f"{katakana(word)} {noun.upper()}"
    else:
        name, japanese = f"{noun} {word}", f"{noun.upper()} {katakana(word)}"
    english = f"{word}: The {adj} {noun}" if pattern in (1, 2) else name
    characters = tuple(f"{made_up_word(rnd, (2, 3))} {made_up_word(rnd, (3, 4))}" for _ in range(3))
    return FranchiseText(word, name, english, japanese, characters)


def entry_names(
    rnd: random.Random, ft: FranchiseText, theme: Theme, title_type: str, index: int, counters: dict
) -> tuple[str, str, str]:
    """(Name, English name, Japanese name) of the ``index``-th entry of a franchise."""
    if index == 0:
        return ft.base_name, ft.base_english, ft.base_japanese
    sub = f"{rnd.choice(theme.adjectives).capitalize()} {rnd.choice(theme.en_nouns)}"
    n = counters[title_type] = counters.get(title_type, 0) + 1
    if title_type == "TV":
        suffix = SEASON_WORDS[n - 1] if n <= len(SEASON_WORDS) else f"Season {n + 1}"
        if rnd.random() < 0.4:
            suffix = sub
        jp_suffix = f" 第{n + 1}期"
    elif title_type == "Movie":
        suffix = f"Movie {n}: {sub}" if rnd.random() < 0.6 else f"{sub} Movie"
        jp_suffix = " 劇場版"
    elif title_type == "OVA":
        suffix = "OVA" if n == 1 else f"OVA {n}: {sub}"
        jp_suffix = " OVA"
    elif title_type == "Special":
        suffix = "Specials" if n == 1 else f"{sub} Special"
        jp_suffix = " 特別編"
    elif title_type == "ONA":
        suffix = "Web" if n == 1 else f"{sub} Web Shorts"
        jp_suffix = " WEB"
    elif title_type == "Music":
        suffix = f"{sub} (Music)" if n > 1 else "Music Clip"
        jp_suffix = " MV"
    else:
        suffix = f"Part {n + 1}"
        jp_suffix = ""
    plain = suffix[0].isdigit() or "Season" in suffix or ":" in ft.base_name
    name = f"{ft.base_name} {suffix}" if plain else f"{ft.base_name}: {suffix}"
    return name, f"{ft.base_english}: {suffix}", f"{ft.base_japanese}{jp_suffix}"


def _theme_sentence(rnd: random.Random, theme: Theme, ft: FranchiseText, dash: bool) -> str:
    char, char2 = rnd.sample(ft.characters, 2)
    role, role2 = rnd.choice(theme.roles), rnd.choice(theme.roles)
    adj, adj2 = rnd.choice(theme.adjectives), rnd.choice(theme.adjectives)
    place, threat = rnd.choice(theme.places), rnd.choice(theme.threats)
    goal = rnd.choice(theme.goals)
    activity, other_activity = rnd.sample(theme.activities, 2)
    article = "an" if adj[0] in "aeiou" else "a"
    templates = (
        f"{char} is {article} {adj} {role} living in {place}.",
        f"Everything changes when {threat} appears, and {char} is drawn into {activity}.",
        f"Determined to {goal}, {char} joins forces with {char2}, a {adj2} {role2}.",
        f"But {threat} is not what it seems, and the legend of {ft.word} holds a secret "
        f"that could change {place} forever.",
        f"Between {activity} and {other_activity}, {char} must learn to {goal}.",
        f"In {place}, the name {ft.word} is whispered with fear and hope.",
        f"{char2} has a different plan: to {rnd.choice(theme.goals)} at any cost.",
        f"Soon {char} discovers that {threat} is connected to {ft.word}.",
    )
    sentence = rnd.choice(templates)
    if dash:
        sentence = f"{char}\u2014{article} {adj} {role}\u2014will stop at nothing to {goal}."
    return sentence


def synopsis_text(
    rnd: random.Random,
    theme: Theme,
    ft: FranchiseText,
    name: str,
    title_type: str,
    index: int,
    target_words: int,
    non_ascii_share: float,
) -> str:
    """An invented synopsis of about ``target_words`` words in the voice of ``theme``."""
    if target_words <= 12:
        if title_type == "Music":
            return f'Music video for the song "{rnd.choice(theme.en_nouns)} {ft.word}".'
        if index > 0:
            return rnd.choice(
                (f"Recap episode of {ft.base_name}.", f"Bonus shorts included with {name}.")
            )
        return f"A short film about a {rnd.choice(theme.adjectives)} {rnd.choice(theme.roles)}."
    sentences: list[str] = []
    if index > 0:
        sentences.append(
            rnd.choice(
                (
                    f"The continuation of {ft.base_name}.",
                    f"A new chapter in the story of {ft.word}.",
                    f"{ft.characters[0]} returns in {name}.",
                )
            )
        )
    dash_at = rnd.randrange(8) if rnd.random() < non_ascii_share else -1
    words = sum(len(s.split()) for s in sentences)
    while words < target_words - 6:
        if rnd.random() < 0.2:
            sentence = rnd.choice(GENERIC_SENTENCES).format(
                char=rnd.choice(ft.characters), activity=rnd.choice(theme.activities)
            )
        else:
            sentence = _theme_sentence(rnd, theme, ft, dash=len(sentences) == dash_at)
        if sentence in sentences and rnd.random() < 0.95:
            continue  # rarely repeat a sentence verbatim
        sentences.append(sentence)
        words += len(sentence.split())
    if target_words > 60 and rnd.random() < 0.25:
        sentences.append(f"(Source: {rnd.choice(PLACEHOLDER_SOURCES)})")
    return " ".join(sentences)

"""Where simulated residents live: real county-level codes of Shandong (GB/T 2260).

Each prefecture-level city is weighted by its population (2020 census, millions) and its
people are spread evenly over the districts and counties listed for it. Codes outside the
province are destinations of moves out. Institution codes are synthetic, built from the
region code (``H370102001`` is hospital 1 in Lixia district, Jinan).
"""

from __future__ import annotations

from typing import Final

#: Prefecture (name, population in millions, its county-level codes).
PREFECTURES: Final[tuple[tuple[str, float, tuple[str, ...]], ...]] = (
    ("Jinan", 9.2, ("370102", "370103", "370104", "370105", "370112", "370113", "370114")),
    ("Qingdao", 10.1, ("370202", "370203", "370211", "370212", "370213", "370214", "370281")),
    ("Zibo", 4.7, ("370302", "370303", "370304", "370305", "370306")),
    ("Zaozhuang", 3.9, ("370402", "370403", "370404", "370481")),
    ("Dongying", 2.2, ("370502", "370503", "370523")),
    ("Yantai", 7.1, ("370602", "370611", "370612", "370613", "370681", "370683")),
    ("Weifang", 9.4, ("370702", "370703", "370705", "370781", "370782", "370783", "370785")),
    ("Jining", 8.4, ("370811", "370812", "370829", "370881", "370883")),
    ("Tai'an", 5.5, ("370902", "370911", "370982", "370983")),
    ("Weihai", 2.9, ("371002", "371003", "371082", "371083")),
    ("Rizhao", 3.0, ("371102", "371103", "371121", "371122")),
    ("Linyi", 11.0, ("371302", "371311", "371312", "371321", "371323", "371324", "371325")),
    ("Dezhou", 5.6, ("371402", "371403", "371425", "371481", "371482")),
    ("Liaocheng", 6.0, ("371502", "371503", "371521", "371526", "371581")),
    ("Binzhou", 3.9, ("371602", "371603", "371621", "371681")),
    ("Heze", 8.8, ("371702", "371703", "371721", "371722", "371724", "371728")),
)

#: Cities with a metro: their residents tap ``metro`` as well as ``bus``.
METRO_PREFIXES: Final = frozenset({"3701", "3702"})

#: Airports in the province (IATA codes): Jinan, Qingdao, Yantai, Weihai, Linyi, Jining.
AIRPORTS: Final = ("TNA", "TAO", "YNT", "WEH", "LYI", "JNG")

#: Where people move their registration to (Beijing, Tianjin, Shanghai, Jiangsu, Zhejiang,
#: Guangdong, Hebei, Henan, Liaoning).
OUT_OF_PROVINCE: Final = (
    "110105",
    "110108",
    "120104",
    "310115",
    "320102",
    "320583",
    "330106",
    "440106",
    "440305",
    "130102",
    "410105",
    "210202",
)


def counties_and_weights() -> tuple[list[str], list[float]]:
    """Every county-level code and its share of the province's population."""
    codes: list[str] = []
    weights: list[float] = []
    for _, millions, counties in PREFECTURES:
        for code in counties:
            codes.append(code)
            weights.append(millions / len(counties))
    return codes, weights

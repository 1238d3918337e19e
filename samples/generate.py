"""Generate the Chancery sample documents and their ground truth.

Run from the repository root::

    .venv/bin/python samples/generate.py           # (re)write the samples
    .venv/bin/python samples/generate.py --check   # write, then verify them

It writes, next to this script:

* ``northland-national-security-strategy.pdf`` - a fictional 10-page strategy
  with a cover, a table of contents, running headers and footers, footnotes,
  page labels (i, ii, 1..8), sentences that cross page breaks and words
  hyphenated at a line end;
* ``northland-energy-brief.md`` - a Markdown brief whose pages are separated by
  a form feed on its own line;
* ``astoria-relations-note.html`` - a one-page HTML note whose ``<nav>``,
  ``<script>`` and ``<style>`` text is not visible content;
* ``page_truth.json`` - what a reader sees on every page of those files.

The PDF body is laid out by hand on a reportlab canvas rather than with
Platypus, so that the ground truth (which sentence lands on which page, which
word is hyphenated, where each footnote sits) is computed by the same code that
places the text and cannot drift from it.

``write_long_pdf`` produces a synthetic report of any length in the same style
for parsing-speed benchmarks.

All output is byte-for-byte deterministic: reportlab runs in invariant mode
(fixed dates and document ID) and pypdf keeps the ID it clones.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import io
import json
import random
import re
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, NamedTuple

from pypdf import PdfWriter
from pypdf.constants import PageLabelStyle
from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

rl_config.invariant = 1

SAMPLES_DIR = Path(__file__).resolve().parent
PDF_NAME = "northland-national-security-strategy.pdf"
MD_NAME = "northland-energy-brief.md"
HTML_NAME = "astoria-relations-note.html"
TRUTH_NAME = "page_truth.json"

TITLE = "National Security Strategy of the Republic of Northland 2025–2030"
TITLE_LINES = ("National Security Strategy of the", "Republic of Northland 2025–2030")
PUBLISHER = "Ministry of Defence of Northland"
RUNNING_HEADER = "Republic of Northland | National Security Strategy 2025–2030"
RUNNING_FOOTER = PUBLISHER

# --- Page geometry and typography (points) -----------------------------------

PAGE_W, PAGE_H = A4
MARGIN_X = 90.0
BODY_W = PAGE_W - 2 * MARGIN_X
HEADER_Y = PAGE_H - 42
BODY_TOP = PAGE_H - 70  # top of the first line box
FOOTER_RULE_Y = 52.0
FOOTER_Y = 40.0
PAGE_NO_Y = 28.0
BODY_MIN_BASELINE = 72.0

SMALL_FONT = "Helvetica"
SMALL_SIZE = 8.0
BODY_FONT = "Times-Roman"
BODY_SIZE = 10.0
BODY_LEADING = 14.0
PARA_GAP = 6.0
SUP_SIZE = 6.5
SUP_RISE = 3.5
NOTE_SIZE = 8.0
NOTE_LEADING = 10.0
NOTE_LAST_BASELINE = 62.0
HEADING_FONT = "Helvetica-Bold"
HEADING_STYLE = {1: (16.0, 16.0, 8.0), 2: (12.0, 10.0, 5.0)}  # size, before, after
BULLET_INDENT = 20.0

SUP_MARK = re.compile(r"\[\^(\d+)\]")
SOFT_HYPHEN = "~"
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-ZÅÆØ])")


# --- Document model ----------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    text: str
    level: int
    new_page: bool = False


@dataclass(frozen=True)
class Paragraph:
    """Body text; ``word[^n]`` marks footnote n, ``infra~structure`` a hyphenation point."""

    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


Block = Heading | Paragraph | Bullets


@dataclass(frozen=True)
class Fact:
    question: str
    answer: str
    quote: str


FOOTNOTES: dict[int, str] = {
    1: "Prime Minister's Office, Government Programme 2024–2028, Halvik 2024, p. 12.",
    2: "Defence Intelligence Service of Northland, Annual Threat Assessment 2025, p. 9.",
    3: "Northland Energy Agency, Annual Report 2024, p. 17.",
    4: "National Cyber Security Centre, Cyber Situation Report 2024, p. 4.",
    5: "Northern Compact, Rosendal Summit Declaration, 12 June 2024, para. 21.",
}

STRATEGY: tuple[Block, ...] = (
    Heading("1 Introduction", 1, new_page=True),
    Paragraph(
        "This strategy sets out how the Republic of Northland will protect its people, its "
        "territory and its democratic institutions between 2025 and 2030. It replaces the "
        "National Security Strategy of 2019, which was written before the Astorian gas cut-off "
        "of October 2022 and before the largest military exercises on our eastern border since "
        "the end of the Cold War. The Government of Prime Minister Henrik Dahl approved the "
        "strategy on 14 March 2025, and the Landsting endorsed it on 2 April 2025 by 121 votes "
        "to 38."
    ),
    Paragraph(
        "Northland is a small country with a long coastline, a population of 6.2 million and an "
        "open economy that depends on secure sea lanes, reliable energy and trusted digital "
        "networks. Our security therefore cannot be separated from our prosperity. The strategy "
        "follows the commitment in the Government Programme[^1] to treat defence, energy and "
        "cyber security as one policy area under a single National Security Council."
    ),
    Paragraph(
        "The Minister of Defence, Åsa Lindqvist, is responsible for coordinating the "
        "implementation of this strategy across government. She will report on progress to the "
        "Landsting every October. The strategy rests on three principles: deterrence through "
        "credible national defence, resilience of society as a whole, and solidarity with our "
        "allies in the Northern Compact."
    ),
    Paragraph(
        "National security is a task for the whole of society. In a crisis or in war, the Armed "
        "Forces depend on civilian transport, health care, telecommunications and food supply, "
        "and these in turn depend on the people who run them. The total defence concept, which "
        "was abandoned in the 1990s, will therefore be rebuilt during the period of this strategy."
    ),
    Paragraph(
        "This is also the first national security strategy to be published in full. Earlier "
        "strategies contained classified annexes that were shared only with the defence committee "
        "of the Landsting. The classified threat assessment on which this strategy is based will "
        "continue to be updated every year by the Defence Intelligence Service."
    ),
    Heading("2 Strategic Environment", 1),
    Paragraph(
        "The security situation in Northern Europe has deteriorated sharply since 2019. "
        "Military power is again being used to redraw borders, and pressure below the threshold "
        "of armed conflict has become a daily reality for Northland. The Defence Intelligence "
        "Service[^2] assesses that the risk of a direct military attack on Northland remains low "
        "in the short term, but that it could rise quickly if the Federation of Astoria "
        "rebuilds its forces faster than expected."
    ),
    Paragraph(
        "Northland shares a land border of 412 kilometres with Astoria in the east and a "
        "maritime boundary with it in the Skarn Strait. To the south lies our closest partner, "
        "the Kingdom of Velmark, with which we share a border of 286 kilometres and a long "
        "history of defence cooperation. To the west, the Grey Sea connects Northland to the "
        "rest of Europe and carries more than 80 per cent of our foreign trade."
    ),
    Paragraph(
        "Climate change is opening new sea routes in the north and will increase competition "
        "for resources in the Arctic. Migration pressure, organised crime and the spread of "
        "disinformation add to the burden on our police, border guard and intelligence "
        "services. None of these trends is likely to reverse before 2030."
    ),
    Paragraph(
        "Technology is changing the character of conflict as well. Cheap drones, long-range "
        "precision weapons and artificial intelligence allow even small states and armed groups to "
        "strike far beyond their borders. Our economy also relies on supply chains that run "
        "through countries whose interests may differ sharply from ours, including for medicines, "
        "semiconductors, batteries, energy technology, fertilisers and critical raw materials."
    ),
    Paragraph(
        "Northland's geography shapes its defence. The country is 1,150 kilometres long from "
        "north to south but only 160 kilometres wide at its narrowest point near Varnes, which "
        "makes the eastern region difficult to reinforce by land. Most of the population lives "
        "along the west coast, where the capital Halvik, the port of Ærøby and the largest "
        "industrial sites are located."
    ),
    Heading("2.1 The Federation of Astoria", 2),
    Paragraph(
        "The Federation of Astoria is the main military threat to Northland. Its armed forces "
        "have grown by roughly a third since 2018, and Astoria now spends an estimated 5.1 per "
        "cent of its gross domestic product on defence. In February 2024 Astoria held the "
        "exercise Iron Winter with about 38,000 troops, some of them within 40 kilometres of our "
        "border. In 2023 it deployed Kestrel-M short-range missiles to the Kragen military "
        "district, which brings all of southern Northland within their range."
    ),
    Paragraph(
        "Astoria's leadership regards Northland's membership of the Northern Compact as a "
        "hostile act. Its official media describe our eastern region of Østmark as historically "
        "Astorian, and Astorian diplomats have repeatedly questioned the 1921 Treaty of Lund "
        "that fixed the border. We do not expect these claims to be abandoned during the period "
        "of this strategy."
    ),
    Paragraph(
        "Astoria also uses economic and political tools against us. It has restricted the transit "
        "of Northland lorries through its territory since 2023, it funds media outlets that target "
        "the Astorian-speaking minority in Østmark, and it has tried to buy influence in Northland "
        "companies through intermediaries registered in third countries. The Government will "
        "screen foreign investments in sensitive sectors more strictly from 2025."
    ),
    Paragraph(
        "At the same time, Northland has an interest in a stable and predictable relationship "
        "with its largest neighbour. The Government will keep channels of communication open, "
        "including the informal café dialogue in which officials of the two countries have met "
        "in neutral Velmark since 2016. Dialogue is not a reward for good behaviour but a tool "
        "to reduce the risk of miscalculation."
    ),
    Heading("2.2 Hybrid Threats and Critical Infrastructure", 2),
    Paragraph(
        "Hostile states increasingly combine cyber attacks, sabotage, disinformation, economic "
        "coercion and the deliberate use of migration as a weapon. Such hybrid campaigns are "
        "designed to stay below the threshold at which allies would respond collectively. They are "
        "aimed in particular at the critical infra~structure on which our society depends, such as "
        "power grids, gas pipelines, ports, data centres and subsea cables. Their aim is to weaken "
        "trust in our institutions and to divide us from our allies."
    ),
    Paragraph(
        "On 17 November 2023 the Borealis-2 subsea data cable between Northland and Velmark was "
        "damaged by the anchor of a merchant vessel that had left an Astorian port two days "
        "earlier. Traffic was rerouted within hours, but repairs took 41 days. The incident "
        "showed how vulnerable our connections to the rest of Europe are and how difficult it "
        "is to attribute such acts to a state. The owner of the vessel, registered in a third "
        "country, has refused to cooperate with the investigation by the Northland police."
    ),
    Paragraph(
        "Disinformation is a growing part of these campaigns. During the municipal elections of "
        "September 2023, the Election Authority identified more than 2,000 fake social media "
        "accounts that spread false claims about the voting process, most of them linked to a "
        "network operated from Astoria. A new Psychological Defence Agency, set up in Halvik in "
        "January 2025, will help public authorities and the media to detect and counter such "
        "operations. Its first task is to prepare the country for the parliamentary elections "
        "of September 2026."
    ),
    Paragraph(
        "In response, the Government created a Critical Infrastructure Protection Unit within "
        "the Ministry of the Interior in 2024. By 2027 every operator of critical "
        "infrastructure will be required to maintain a security plan approved by the unit, to "
        "report serious incidents within 24 hours and to take part in a national exercise at "
        "least once every two years."
    ),
    Heading("3 Energy Security", 1),
    Paragraph(
        "Energy is the area in which Northland's vulnerability was most clearly exposed. Until "
        "2021 the country bought most of its natural gas from Astoria through the Eastline "
        "pipeline. When Astoria halted deliveries in October 2022, gas prices in Northland rose "
        "fivefold within a month, and the Government had to spend 3.2 billion crowns on "
        "emergency support for households and industry."
    ),
    Heading("3.1 Gas Supply and Storage", 2),
    Paragraph(
        "Since then, Northland has reduced its dependence at remarkable speed. Astoria's share "
        "of our gas imports fell from 62 per cent in 2021 to 9 per cent in 2024, according to "
        "figures published by the Northland Energy Agency[^3] in its annual report. The LNG "
        "terminal at Ærøby, which opened in March 2024, can receive 5.5 billion cubic metres of "
        "gas per year, more than the country's entire annual consumption."
    ),
    Paragraph(
        "The Government will end all remaining gas imports from Astoria by the end of 2027. It "
        "will also build up a strategic gas reserve equal to 90 days of average winter "
        "consumption by 2026, held partly in the Lindås storage facility and partly in allied "
        "storage in Velmark. The reserve will be managed by the Northland Energy Agency and "
        "released only by decision of the National Security Council."
    ),
    Paragraph(
        "The Eastline pipeline itself has not carried gas since October 2022. The Government has "
        "decided not to reopen it, and its Northland section will be converted for the transport "
        "of hydrogen after 2030."
    ),
    Heading("3.2 Electricity and the Grid", 2),
    Paragraph(
        "Renewable sources supplied 48 per cent of Northland's electricity in 2024. The "
        "Government's target is 70 per cent by 2030, mainly through offshore wind in the Grey "
        "Sea and new onshore wind in the north. A larger share of renewables makes us less "
        "dependent on imported fuels, but it also makes the electricity grid more complex and "
        "more exposed to cyber attacks."
    ),
    Paragraph(
        "The transmission system operator, Nordnett, will invest 11 billion crowns in the grid "
        "between 2025 and 2030. The investment includes a second interconnector with Velmark, "
        "hardened control centres and a reserve of mobile transformers that can replace damaged "
        "equipment within 72 hours. Substations of national importance will be protected by "
        "the Home Guard in times of crisis."
    ),
    Paragraph(
        "Energy efficiency is also a security measure, because energy that is not consumed cannot "
        "be cut off. The Government will continue the programme of support for insulation and heat "
        "pumps that helped households reduce their gas and electricity consumption by 14 per cent "
        "in the winter of 2022–2023."
    ),
    Paragraph(
        "Northland also depends on imports of oil products for transport and for the Armed Forces. "
        "The Government will keep emergency stocks of oil equal to 120 days of net imports and "
        "will secure a fuel supply for the Armed Forces that can be maintained for at least 60 "
        "days without imports. A national strategy for critical minerals, including the graphite "
        "deposits in the north, will be presented to the Landsting in 2026."
    ),
    Heading("4 Cyber Security", 1, new_page=True),
    Paragraph(
        "Northland is one of the most digitalised societies in Europe, and almost all public "
        "services are now delivered online. This is a strength, but it also means that a "
        "successful attack on our digital networks could disrupt daily life for millions of "
        "people. The number of significant cyber incidents reported to the "
        "authorities[^4] rose from 870 in 2022 to 1,340 in 2024."
    ),
    Paragraph(
        "Most of these incidents were criminal, but the National Cyber Security Centre "
        "attributes at least 60 of them to groups acting on behalf of foreign states. The most "
        "serious was the ransomware attack on the hospital district of Sundvik in May 2024, "
        "which forced three hospitals to postpone planned operations for nine days. "
        "State-sponsored groups have also targeted ministries, municipalities and companies in "
        "the defence and energy sectors."
    ),
    Paragraph(
        "The National Cyber Security Centre was established in Halvik in 2022 and now employs "
        "310 people. Its budget will grow from 290 million crowns in 2025 to 480 million crowns "
        "in 2030. The centre will become the single point of contact for incident reporting and "
        "will publish a public situation report every quarter."
    ),
    Paragraph(
        "The Armed Forces will expand the cyber reserve, which allows specialists from private "
        "companies to serve part-time in military cyber units, from 400 members today to 1,200 "
        "by 2028. Northland will also build the capacity to conduct offensive cyber operations "
        "against those who attack us, under the control of the Government and within the limits "
        "of international law."
    ),
    Paragraph(
        "Cyber security is not only a task for the state. Every citizen, company and public "
        "authority must take basic steps to protect their own systems. The Government will "
        "therefore launch a national awareness campaign in 2025 and will make cyber security "
        "part of the school curriculum from 2026."
    ),
    Heading("5 Alliances and Partnerships", 1, new_page=True),
    Paragraph(
        "Northland cannot defend itself alone. Membership of the Northern Compact, which we "
        "joined in 2019, is the cornerstone of our security. The Compact now has 11 member "
        "states, and its mutual defence clause commits every member to assist any other member "
        "that is attacked. At the Rosendal summit[^5] in June 2024, the allies agreed to "
        "station a multinational brigade in Northland on a rotational basis from 2026."
    ),
    Paragraph(
        "Our most important bilateral partner is the Kingdom of Velmark. The two countries have "
        "integrated their air surveillance since 2021 and plan to form a joint naval task group "
        "in the Skarn Strait. We will also deepen cooperation with the other Nordic states, with "
        "the European Union and with the United States, whose commitment to the security of "
        "Northern Europe remains essential."
    ),
    Paragraph(
        "Hosting allied forces requires preparation. The Government will invest 1.6 billion crowns "
        "in barracks, training areas, fuel depots and port facilities at Camp Rask and at the "
        "naval base of Skarnhamn by 2027. Legislation will be amended so that allied units can "
        "cross the border and use Northland's roads, railways and airspace at short notice."
    ),
    Paragraph(
        "During the period of this strategy, Northland will give priority to the following "
        "commitments:"
    ),
    Bullets(
        (
            "Hosting the multinational Northern Compact brigade at Camp Rask from 2026.",
            "Joint air policing with Velmark over the Skarn Strait.",
            "Contributing 250 troops a year to Compact missions abroad.",
            "Annual civil defence exercises with all neighbouring allies.",
        )
    ),
    Paragraph(
        "Northland will also remain an active contributor to international peace and security "
        "beyond its own region. We will continue to support the United Nations and will keep "
        "our development assistance at 0.7 per cent of gross national income."
    ),
    Paragraph(
        "Northland's security also depends on the Arctic and the North Atlantic. We will work with "
        "our allies to keep the sea lines of communication open and to monitor the growing "
        "military presence of other powers in the High North. Within the European Union, Northland "
        "supports a stronger common defence industry and the joint procurement of ammunition and "
        "air defence."
    ),
    Heading("6 Defence Capabilities and Budget", 1, new_page=True),
    Paragraph(
        "The Armed Forces must be able to deter an attack, to defend Northland's territory "
        "until allied reinforcements arrive and to take part in collective defence elsewhere in "
        "the Compact area. To achieve this, the Government will raise defence spending from 2.4 "
        "per cent of gross domestic product in 2025 to 3.0 per cent in 2030."
    ),
    Heading("6.1 Armed Forces Development", 2),
    Paragraph(
        "The Army will be reorganised into two mechanised brigades and a new territorial "
        "brigade in the east, based in the garrison town of Varnes. The number of conscripts "
        "trained each year will rise from 4,500 in 2025 to 6,000 in 2029, and the Home Guard "
        "will grow to 28,000 volunteers. Women have been called up on the same terms as men "
        "since 2018, and they made up 27 per cent of conscripts in 2024."
    ),
    Paragraph(
        "The Air Force will keep its fleet of 36 fighter aircraft at Kallby air base and will "
        "disperse them to civilian airports and road bases in a crisis. Its transport and tanker "
        "aircraft will be shared with Velmark through a joint squadron from 2027."
    ),
    Paragraph(
        "The Air Force will buy six medium-range air-defence batteries to protect cities, ports "
        "and energy sites against missiles and drones. The Navy will receive two new "
        "submarines, the first of which will enter service in 2029, and four mine "
        "countermeasure vessels. All new systems will be chosen with "
        "inter~operability with our allies as a decisive requirement."
    ),
    Paragraph(
        "Modern war has shown that stocks of ammunition and spare parts matter as much as "
        "platforms. The Government will therefore triple the national stock of artillery "
        "ammunition by 2028 and will sign long-term contracts with domestic producers, in "
        "particular the ammunition plant at Holmvik. Stocks will be stored in dispersed and "
        "protected sites."
    ),
    Paragraph(
        "The Armed Forces will need about 4,000 additional professional soldiers, officers and "
        "civilian staff by 2030. To recruit and keep them, the Government will raise the pay of "
        "junior officers by 12 per cent in 2025, offer student loan relief to those who serve for "
        "at least four years and build 1,500 new homes for military families near the largest "
        "bases."
    ),
    Paragraph(
        "The Defence Intelligence Service will be given new powers to collect signals intelligence "
        "abroad, subject to approval by an independent court. Northland will launch its first two "
        "military surveillance satellites, in cooperation with Velmark, in 2027."
    ),
    Paragraph(
        "A strong domestic defence industry is part of deterrence. Northland's defence companies "
        "employ about 9,000 people, and their exports reached 6.7 billion crowns in 2024. The "
        "Government will give them long-term framework contracts and easier access to capital, and "
        "it will speed up export control for deliveries to allies."
    ),
    Heading("6.2 Budget 2025–2030", 2),
    Paragraph(
        "The defence budget will increase from 7.9 billion crowns in 2025 to 11.4 billion "
        "crowns in 2030. Over the whole period, the Government will spend a total of 56.3 "
        "billion crowns on defence, of which at least 30 per cent will go to investment in new "
        "equipment and infrastructure. An additional 4.1 billion crowns is set aside for civil "
        "preparedness, including shelters, emergency stocks and the protection of critical "
        "infrastructure."
    ),
    Paragraph(
        "In 2025, personnel costs account for 41 per cent of the budget, operations and "
        "maintenance for 31 per cent and investment for 28 per cent. By 2030, the share of "
        "investment will rise to 35 per cent, while the absolute spending on personnel will still "
        "grow because of the larger number of conscripts and professional staff. Spending on "
        "defence research and development will be doubled to 2 per cent of the defence budget."
    ),
    Paragraph(
        "The increase will be financed through the regular state budget and will not be funded "
        "by new borrowing. The Ministry of Finance and the Ministry of Defence will publish a "
        "joint report on the cost of the strategy every year, so that the Landsting can follow "
        "how the money is spent."
    ),
    Heading("6.3 Civil Preparedness", 2),
    Paragraph(
        "Civil preparedness will receive more attention than at any time since the Cold War. "
        "Municipalities will be required to have plans to supply water, heat and food for at least "
        "one week without outside help, and public shelters will be expanded so that they can hold "
        "70 per cent of the population by 2030."
    ),
    Paragraph(
        "Health care, water supply and telecommunications must continue to function in war. "
        "The Government will build up national stocks of medicines and medical equipment for at "
        "least three months of normal consumption by 2028 and will require mobile network "
        "operators to keep their core networks running for at least 72 hours without mains "
        "power."
    ),
    Heading("7 Implementation and Review", 1, new_page=True),
    Paragraph(
        "The National Security Council, chaired by the Prime Minister, is responsible for the "
        "overall implementation of this strategy. It meets at least four times a year and will "
        "be supported by a new National Security Secretariat of 45 staff in the Prime "
        "Minister's Office."
    ),
    Paragraph(
        "Each ministry will prepare an action plan for its part of the strategy by 1 September "
        "2025. The Minister of Defence will present an annual progress report to the Landsting "
        "every October, and a full mid-term review will be carried out in 2027. The next "
        "national security strategy is due to be published in 2030."
    ),
    Paragraph(
        "The security of Northland depends on the will of its people to defend it. The "
        "Government will therefore involve municipalities, companies, civil society and every "
        "citizen in building a more resilient society, so that Northland remains free, "
        "democratic and secure."
    ),
)

STRATEGY_FACTS: tuple[Fact, ...] = (
    Fact(
        "Who is the Minister of Defence of Northland?",
        "Åsa Lindqvist",
        "The Minister of Defence, Åsa Lindqvist, is responsible for coordinating the "
        "implementation of this strategy across government.",
    ),
    Fact(
        "When did the Government of Northland approve the National Security Strategy?",
        "14 March 2025",
        "The Government of Prime Minister Henrik Dahl approved the strategy on 14 March 2025, "
        "and the Landsting endorsed it on 2 April 2025 by 121 votes to 38.",
    ),
    Fact(
        "How long is Northland's land border with the Federation of Astoria?",
        "412 kilometres",
        "Northland shares a land border of 412 kilometres with Astoria in the east and a "
        "maritime boundary with it in the Skarn Strait.",
    ),
    Fact(
        "How many troops took part in Astoria's Iron Winter exercise?",
        "about 38,000",
        "In February 2024 Astoria held the exercise Iron Winter with about 38,000 troops, some "
        "of them within 40 kilometres of our border.",
    ),
    Fact(
        "How long did the repairs to the Borealis-2 cable take?",
        "41 days",
        "Traffic was rerouted within hours, but repairs took 41 days.",
    ),
    Fact(
        "What share of Northland's gas imports came from Astoria in 2024?",
        "9 per cent",
        "Astoria's share of our gas imports fell from 62 per cent in 2021 to 9 per cent in "
        "2024, according to figures published by the Northland Energy Agency in its annual "
        "report.",
    ),
    Fact(
        "What is the capacity of the Ærøby LNG terminal?",
        "5.5 billion cubic metres of gas per year",
        "The LNG terminal at Ærøby, which opened in March 2024, can receive 5.5 billion cubic "
        "metres of gas per year, more than the country's entire annual consumption.",
    ),
    Fact(
        "How many significant cyber incidents were reported in Northland in 2024?",
        "1,340",
        "The number of significant cyber incidents reported to the authorities rose from 870 "
        "in 2022 to 1,340 in 2024.",
    ),
    Fact(
        "How large will the cyber reserve be by 2028?",
        "1,200 members",
        "The Armed Forces will expand the cyber reserve, which allows specialists from private "
        "companies to serve part-time in military cyber units, from 400 members today to 1,200 "
        "by 2028.",
    ),
    Fact(
        "When did Northland join the Northern Compact?",
        "2019",
        "Membership of the Northern Compact, which we joined in 2019, is the cornerstone of our "
        "security.",
    ),
    Fact(
        "What share of GDP will Northland spend on defence in 2030?",
        "3.0 per cent",
        "To achieve this, the Government will raise defence spending from 2.4 per cent of gross "
        "domestic product in 2025 to 3.0 per cent in 2030.",
    ),
    Fact(
        "How much will Northland spend on defence in total over 2025–2030?",
        "56.3 billion crowns",
        "Over the whole period, the Government will spend a total of 56.3 billion crowns on "
        "defence, of which at least 30 per cent will go to investment in new equipment and "
        "infrastructure.",
    ),
    Fact(
        "When will the mid-term review of the strategy take place?",
        "2027",
        "The Minister of Defence will present an annual progress report to the Landsting every "
        "October, and a full mid-term review will be carried out in 2027.",
    ),
)


# --- Text helpers ------------------------------------------------------------


def collapse(text: str) -> str:
    return " ".join(text.split())


def reader_text(marked: str) -> str:
    """What a reader sees: no footnote marks, hyphenation points joined."""
    return SUP_MARK.sub("", marked).replace(SOFT_HYPHEN, "")


def split_sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_BREAK.split(collapse(text)) if s]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for gap in SENTENCE_BREAK.finditer(text):
        spans.append((start, gap.start()))
        start = gap.end()
    spans.append((start, len(text)))
    return spans


# --- Line breaking -----------------------------------------------------------


class Run(NamedTuple):
    text: str
    sup: bool


@dataclass
class Line:
    runs: list[Run]
    clean: str  # reader text of this line, without a trailing hyphen
    hyphenated: str | None = None  # the re-joined word when the line ends in "-"
    notes: tuple[int, ...] = ()


def _word_runs(raw: str) -> list[Run]:
    runs: list[Run] = []
    pos = 0
    for mark in SUP_MARK.finditer(raw):
        if mark.start() > pos:
            runs.append(Run(raw[pos : mark.start()].replace(SOFT_HYPHEN, ""), False))
        runs.append(Run(mark.group(1), True))
        pos = mark.end()
    if pos < len(raw):
        runs.append(Run(raw[pos:].replace(SOFT_HYPHEN, ""), False))
    return runs


def _runs_width(runs: list[Run], font: str, size: float) -> float:
    return sum(float(stringWidth(r.text, font, SUP_SIZE if r.sup else size)) for r in runs)


def _check_marks(raw: str) -> None:
    # A mark glued after letters and followed by a space keeps extracted text
    # unambiguous: "Agency3 reported" can only be a footnote, never a number.
    for mark in SUP_MARK.finditer(raw):
        if mark.start() == 0 or not raw[mark.start() - 1].isalpha() or mark.end() != len(raw):
            raise ValueError(f"footnote mark must end a word after a letter: {raw!r}")


def wrap(text: str, font: str, size: float, width: float) -> list[Line]:
    """Greedy left-aligned line breaking; breaks at ``~`` only when a word overflows."""
    space = stringWidth(" ", font, size)
    words: deque[str] = deque(text.split())
    lines: list[Line] = []
    current: list[str] = []
    used = 0.0

    def make(raws: list[str], hyphenated: str | None = None) -> Line:
        runs: list[Run] = []
        for i, raw in enumerate(raws):
            if i:
                runs.append(Run(" ", False))
            runs.extend(_word_runs(raw))
        clean = " ".join(reader_text(r) for r in raws)
        if hyphenated is not None:
            clean = clean[:-1]
        notes = tuple(int(m.group(1)) for r in raws for m in SUP_MARK.finditer(r))
        return Line(runs, clean, hyphenated, notes)

    while words:
        raw = words.popleft()
        _check_marks(raw)
        w = _runs_width(_word_runs(raw), font, size)
        extra = w + (space if current else 0.0)
        if not current or used + extra <= width:
            current.append(raw)
            used += extra
            continue
        if SOFT_HYPHEN in raw:
            head, tail = raw.split(SOFT_HYPHEN, 1)
            head_w = _runs_width(_word_runs(head + "-"), font, size)
            if used + space + head_w <= width:
                lines.append(make([*current, head + "-"], hyphenated=reader_text(raw)))
                words.appendleft(tail)
                current, used = [], 0.0
                continue
        lines.append(make(current))
        current, used = [raw], w
    if current:
        lines.append(make(current))
    return lines


# --- Layout ------------------------------------------------------------------


class Draw(NamedTuple):
    x: float
    y: float
    font: str
    size: float
    runs: tuple[Run, ...]


@dataclass
class PageLayout:
    draws: list[Draw] = field(default_factory=list)
    notes: list[int] = field(default_factory=list)
    headings: list[dict[str, Any]] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    empty: bool = True


@dataclass
class Layout:
    pages: list[PageLayout]
    cross_page: list[dict[str, Any]]
    hyphenated: list[tuple[str, int]]  # (word, body page index)
    toc: list[tuple[Heading, int]]  # (heading, body page index)


def _note_lines(number: int) -> list[Line]:
    return wrap(f"{number}. {FOOTNOTES[number]}", BODY_FONT, NOTE_SIZE, BODY_W)


def _bottom_limit(notes: list[int]) -> float:
    if not notes:
        return BODY_MIN_BASELINE
    count = sum(len(_note_lines(n)) for n in notes)
    rule_y = NOTE_LAST_BASELINE + (count - 1) * NOTE_LEADING + NOTE_LEADING
    return rule_y + 10.0


class _Flow:
    """Places blocks top to bottom, starting a new page when the next line does not fit."""

    def __init__(self) -> None:
        self.pages: list[PageLayout] = [PageLayout()]
        self.top = BODY_TOP
        self.cross_page: list[dict[str, Any]] = []
        self.hyphenated: list[tuple[str, int]] = []
        self.toc: list[tuple[Heading, int]] = []

    @property
    def page(self) -> PageLayout:
        return self.pages[-1]

    def new_page(self) -> None:
        self.pages.append(PageLayout())
        self.top = BODY_TOP

    def gap(self, points: float) -> None:
        if not self.page.empty:
            self.top -= points

    def fits(self, baseline: float, notes: tuple[int, ...] = ()) -> bool:
        return baseline >= _bottom_limit(self.page.notes + list(notes))

    def heading(self, block: Heading) -> None:
        size, before, after = HEADING_STYLE[block.level]
        if block.new_page and not self.page.empty:
            self.new_page()
        self.gap(before)
        # Keep the heading with at least two lines of what follows it.
        needed = size * 1.25 + after + 2 * BODY_LEADING
        if not self.page.empty and not self.fits(self.top - needed):
            self.new_page()
        baseline = self.top - size
        self.page.draws.append(
            Draw(MARGIN_X, baseline, HEADING_FONT, size, (Run(block.text, False),))
        )
        self.page.headings.append({"text": block.text, "level": block.level})
        self.page.empty = False
        self.toc.append((block, len(self.pages) - 1))
        self.top -= size * 1.25 + after

    def place_line(self, line: Line, x: float) -> int:
        baseline = self.top - BODY_SIZE
        if not self.fits(baseline, line.notes):
            self.new_page()
            baseline = self.top - BODY_SIZE
        self.page.draws.append(Draw(x, baseline, BODY_FONT, BODY_SIZE, tuple(line.runs)))
        self.page.notes.extend(line.notes)
        self.page.empty = False
        self.top -= BODY_LEADING
        return len(self.pages) - 1

    def paragraph(self, block: Paragraph) -> None:
        self.gap(PARA_GAP)
        if not self.page.empty and not self.fits(self.top - BODY_SIZE - BODY_LEADING):
            self.new_page()  # no single orphaned first line at a page foot
        lines = wrap(block.text, BODY_FONT, BODY_SIZE, BODY_W)
        line_pages: list[int] = []
        starts: list[int] = []
        text = ""
        for line in lines:
            page = self.place_line(line, MARGIN_X)
            if line.hyphenated is not None:
                self.hyphenated.append((line.hyphenated, page))
            line_pages.append(page)
            starts.append(len(text))
            text += line.clean + ("" if line.hyphenated else " ")
        text = text.rstrip()
        for i, line in enumerate(lines[:-1]):
            if line.hyphenated and line_pages[i] != line_pages[i + 1]:
                raise ValueError(f"{line.hyphenated!r} would be hyphenated across a page break")
        for lo, hi in sentence_spans(text):
            first = line_pages[bisect.bisect_right(starts, lo) - 1]
            last = line_pages[bisect.bisect_right(starts, hi - 1) - 1]
            sentence = text[lo:hi]
            if first == last:
                self.pages[first].sentences.append(sentence)
            else:
                self.cross_page.append({"text": sentence, "pages": [first, last]})

    def bullets(self, block: Bullets) -> None:
        self.gap(PARA_GAP)
        for item in block.items:
            lines = wrap(item, BODY_FONT, BODY_SIZE, BODY_W - BULLET_INDENT)
            for i, line in enumerate(lines):
                page = self.pages[self.place_line(line, MARGIN_X + BULLET_INDENT)]
                if i == 0:
                    # Drawn before its text so extraction reads "• item".
                    bullet = Draw(
                        MARGIN_X + 8, page.draws[-1].y, BODY_FONT, BODY_SIZE, (Run("•", False),)
                    )
                    page.draws.insert(len(page.draws) - 1, bullet)
                    page.bullets.append(collapse(item))
            self.top -= 2.0


def layout_strategy(blocks: tuple[Block, ...] = STRATEGY) -> Layout:
    flow = _Flow()
    for block in blocks:
        if isinstance(block, Heading):
            flow.heading(block)
        elif isinstance(block, Paragraph):
            flow.paragraph(block)
        else:
            flow.bullets(block)
    return Layout(flow.pages, flow.cross_page, flow.hyphenated, flow.toc)


BODY_PAGES = 8
FRONT_PAGES = 2  # cover and contents, labelled i and ii
BULLET_PAGE = 7  # physical page that must carry the bulleted list


def validate_layout(layout: Layout) -> None:
    """Fail loudly when a content edit breaks a property the tests rely on."""
    problems: list[str] = []
    if len(layout.pages) != BODY_PAGES:
        problems.append(f"body has {len(layout.pages)} pages, expected {BODY_PAGES}")
    bullet_pages = [i + FRONT_PAGES + 1 for i, p in enumerate(layout.pages) if p.bullets]
    if bullet_pages != [BULLET_PAGE]:
        problems.append(f"bullets on pages {bullet_pages}, expected [{BULLET_PAGE}]")
    if len(layout.cross_page) < 2:
        problems.append("fewer than two sentences cross a page break")
    if len(layout.hyphenated) < 1:
        problems.append("no word is hyphenated at a line end")
    notes = [n for p in layout.pages for n in p.notes]
    if notes != sorted(FOOTNOTES) or len(notes) < 3:
        problems.append(f"footnotes out of order or missing: {notes}")
    if problems:
        raise ValueError("; ".join(problems))


# --- PDF rendering -----------------------------------------------------------


def _draw(canvas: Canvas, draw: Draw) -> None:
    text = canvas.beginText(draw.x, draw.y)
    pending = ""
    for run in draw.runs:
        if not run.sup:
            pending += run.text
            continue
        text.setFont(draw.font, draw.size)
        text.textOut(pending)
        pending = ""
        text.setFont(draw.font, SUP_SIZE)
        text.setRise(SUP_RISE)
        text.textOut(run.text)
        text.setRise(0)
    text.setFont(draw.font, draw.size)
    text.textOut(pending)
    canvas.drawText(text)


def _draw_header(canvas: Canvas, header: str) -> None:
    canvas.setFont(SMALL_FONT, SMALL_SIZE)
    canvas.drawString(MARGIN_X, HEADER_Y, header)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN_X, HEADER_Y - 5, PAGE_W - MARGIN_X, HEADER_Y - 5)


def _draw_footer(canvas: Canvas, label: str, with_publisher: bool) -> None:
    canvas.setFont(SMALL_FONT, SMALL_SIZE)
    if with_publisher:
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN_X, FOOTER_RULE_Y, PAGE_W - MARGIN_X, FOOTER_RULE_Y)
        canvas.drawCentredString(PAGE_W / 2, FOOTER_Y, RUNNING_FOOTER)
    canvas.drawCentredString(PAGE_W / 2, PAGE_NO_Y, label)


def _draw_notes(canvas: Canvas, notes: list[int]) -> None:
    lines = [line for n in notes for line in _note_lines(n)]
    y = NOTE_LAST_BASELINE + (len(lines) - 1) * NOTE_LEADING
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN_X, y + NOTE_LEADING, MARGIN_X + 120, y + NOTE_LEADING)
    canvas.setFont(BODY_FONT, NOTE_SIZE)
    for line in lines:
        canvas.drawString(MARGIN_X, y, line.clean)
        y -= NOTE_LEADING


def _draw_cover(canvas: Canvas) -> list[str]:
    size = HEADING_STYLE[1][0]
    canvas.setLineWidth(1.5)
    canvas.line(MARGIN_X, 580, PAGE_W - MARGIN_X, 580)
    canvas.setFont(HEADING_FONT, size)
    for i, line in enumerate(TITLE_LINES):
        canvas.drawCentredString(PAGE_W / 2, 540 - i * size * 1.3, line)
    canvas.line(MARGIN_X, 490, PAGE_W - MARGIN_X, 490)
    canvas.setFont(SMALL_FONT, 12)
    canvas.drawCentredString(PAGE_W / 2, 440, PUBLISHER)
    approval = "Approved by the Government of Northland on 14 March 2025."
    canvas.setFont(SMALL_FONT, 10)
    canvas.drawCentredString(PAGE_W / 2, 416, approval)
    return [approval]


def _draw_contents(canvas: Canvas, toc: list[tuple[Heading, str]]) -> None:
    size = HEADING_STYLE[1][0]
    canvas.setFont(HEADING_FONT, size)
    canvas.drawString(MARGIN_X, BODY_TOP - size, "Contents")
    y = BODY_TOP - size - 30
    dot_w = stringWidth(".", SMALL_FONT, 10)
    right = PAGE_W - MARGIN_X
    canvas.setFont(SMALL_FONT, 10)
    for heading, label in toc:
        if heading.level == 1 and y < BODY_TOP - size - 30:
            y -= 6
        x = MARGIN_X + (heading.level - 1) * 18
        canvas.drawString(x, y, heading.text)
        start = x + stringWidth(heading.text, SMALL_FONT, 10) + 4
        end = right - stringWidth(label, SMALL_FONT, 10) - 4
        canvas.drawString(start, y, "." * int((end - start) / dot_w))
        canvas.drawRightString(right, y, label)
        y -= 18


def _label(physical: int) -> str:
    """Printed page label of a 1-based physical page of the strategy."""
    if physical <= FRONT_PAGES:
        return ("i", "ii")[physical - 1]
    return str(physical - FRONT_PAGES)


def write_strategy_pdf(path: Path) -> dict[str, Any]:
    """Write the strategy PDF and return its page truth."""
    layout = layout_strategy()
    validate_layout(layout)
    toc = [(h, _label(i + FRONT_PAGES + 1)) for h, i in layout.toc]

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=1)
    canvas.setTitle(TITLE)
    canvas.setAuthor(PUBLISHER)
    canvas.setSubject("Fictional sample document for Chancery")
    canvas.setCreator("samples/generate.py")

    cover_sentences = _draw_cover(canvas)
    _draw_footer(canvas, _label(1), with_publisher=False)
    canvas.showPage()
    _draw_contents(canvas, toc)
    _draw_footer(canvas, _label(2), with_publisher=False)
    canvas.showPage()
    for i, page in enumerate(layout.pages):
        _draw_header(canvas, RUNNING_HEADER)
        for draw in page.draws:
            _draw(canvas, draw)
        if page.notes:
            _draw_notes(canvas, page.notes)
        _draw_footer(canvas, _label(i + FRONT_PAGES + 1), with_publisher=True)
        canvas.showPage()
    canvas.save()

    # reportlab's invariant mode already fixed the document /ID; cloning keeps it.
    writer = PdfWriter(clone_from=io.BytesIO(buffer.getvalue()))
    writer.set_page_label(0, FRONT_PAGES - 1, style=PageLabelStyle.LOWERCASE_ROMAN, start=1)
    writer.set_page_label(
        FRONT_PAGES, FRONT_PAGES + BODY_PAGES - 1, style=PageLabelStyle.DECIMAL, start=1
    )
    with path.open("wb") as fh:
        writer.write(fh)

    pages: list[dict[str, Any]] = [
        _page_truth(1, _label(1), [{"text": TITLE, "level": 1}], cover_sentences),
        _page_truth(2, _label(2), [{"text": "Contents", "level": 1}], []),
    ]
    for i, page in enumerate(layout.pages):
        number = i + FRONT_PAGES + 1
        notes = [f"{n}. {FOOTNOTES[n]}" for n in page.notes]
        pages.append(
            _page_truth(number, _label(number), page.headings, page.sentences, notes, page.bullets)
        )
    return {
        "page_count": len(pages),
        "title": TITLE,
        "pages": pages,
        "running_header": RUNNING_HEADER,
        "running_footer": RUNNING_FOOTER,
        "toc": [
            {"text": h.text, "level": h.level, "label": label, "page": int(label) + FRONT_PAGES}
            for h, label in toc
        ],
        "cross_page_sentences": [
            {"text": c["text"], "pages": [p + FRONT_PAGES + 1 for p in c["pages"]]}
            for c in layout.cross_page
        ],
        "hyphenated_words": [word for word, _ in layout.hyphenated],
        "hyphenations": [
            {"word": word, "page": page + FRONT_PAGES + 1} for word, page in layout.hyphenated
        ],
        "facts": _facts_truth(STRATEGY_FACTS, pages),
    }


def _page_truth(
    number: int,
    label: str | None,
    headings: list[dict[str, Any]],
    sentences: list[str],
    footnotes: list[str] | None = None,
    bullets: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "number": number,
        "label": label,
        "headings": headings,
        "sentences": sentences,
        "footnotes": footnotes or [],
        "bullets": bullets or [],
    }


def _facts_truth(facts: tuple[Fact, ...], pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for fact in facts:
        found = [p["number"] for p in pages if fact.quote in p["sentences"]]
        if len(found) != 1:
            raise ValueError(f"quote must be a sentence on exactly one page: {fact.quote!r}")
        out.append(
            {
                "question": fact.question,
                "answer": fact.answer,
                "page": found[0],
                "quote": fact.quote,
            }
        )
    return out


# --- Markdown brief ----------------------------------------------------------

BRIEF_TITLE = "Northland Energy Security Brief"

BRIEF: tuple[tuple[Block, ...], ...] = (
    (
        Heading(BRIEF_TITLE, 1),
        Paragraph(
            "Prepared by the Northland Energy Agency for the National Security Council, March 2025."
        ),
        Heading("Summary", 2),
        Paragraph(
            "Northland has moved from heavy dependence on Astorian gas to a diversified energy "
            "system in less than three years. Astoria's share of Northland's gas imports fell "
            "from 62 per cent in 2021 to 9 per cent in 2024. The LNG terminal at Ærøby, opened "
            "in March 2024, can receive 5.5 billion cubic metres of gas per year. The remaining "
            "risks lie less in supply than in the physical and digital security of the energy "
            "system itself."
        ),
        Heading("Where Northland Stands in 2025", 2),
        Paragraph(
            "Natural gas covers about 14 per cent of Northland's primary energy use, down from "
            "21 per cent in 2021. Households mainly use district heating and electricity, so the "
            "gas market is dominated by industry and by combined heat and power plants. "
            "Renewable sources supplied 48 per cent of Northland's electricity in 2024."
        ),
        Paragraph(
            "The winter of 2022–2023 was the hardest test of the energy system in a generation. "
            "Emergency support for households and industry cost the state 3.2 billion crowns. "
            "No customer lost gas supply, but two fertiliser plants in Kessmark closed for good."
        ),
    ),
    (
        Heading("Gas: From Dependence to Diversification", 2),
        Paragraph(
            "The Ærøby terminal is operated by Ærøby LNG, a company owned jointly by the state "
            "and the port of Ærøby. It received 61 cargoes in its first twelve months of "
            "operation, most of them from Norway, Qatar and the United States. Its floating "
            "storage unit, the Nordic Aurora, is leased until 2034."
        ),
        Paragraph(
            "The Lindås underground storage facility can hold 1.1 billion cubic metres of gas. "
            "Together with reserved capacity in Velmark, it will allow Northland to reach the "
            "strategic reserve of 90 days of average winter consumption by 2026. The Government "
            "will end all remaining gas imports from Astoria by the end of 2027."
        ),
        Heading("Electricity and Interconnectors", 2),
        Paragraph(
            "Offshore wind capacity in the Grey Sea is planned to reach 4.5 gigawatts by 2030, up "
            "from 1.2 gigawatts today. The NorVel Link, a 1,400-megawatt interconnector to "
            "Velmark, is due to be commissioned in 2026. It will be Northland's second link with "
            "Velmark and will double the capacity for emergency electricity imports."
        ),
        Paragraph(
            "Nordnett will invest 11 billion crowns in the grid between 2025 and 2030. Its new "
            "control centre in Halvik, built to withstand both cyber attacks and physical "
            "sabotage, will open in 2027."
        ),
    ),
    (
        Heading("Risks to Watch", 2),
        Paragraph("The Agency sees three main risks for the period up to 2030:"),
        Bullets(
            (
                "Sabotage of pipelines, cables and substations, as shown by the Borealis-2 "
                "incident in November 2023.",
                "Cyber attacks on the control systems of Nordnett and the distribution companies.",
                "Price shocks on the global LNG market during cold winters.",
            )
        ),
        Heading("Recommendations", 2),
        Paragraph(
            "The Agency recommends that the Government start a hydrogen pilot at Ærøby in 2027 "
            "to prepare the terminal for green fuels. It also recommends a national stock of 40 "
            "mobile transformers by 2028. Operators of critical energy sites should test their "
            "emergency plans together with the Home Guard at least once a year."
        ),
        Paragraph(
            "The Agency will publish its next brief in March 2026, after the first winter with "
            "the strategic gas reserve in place."
        ),
    ),
)

BRIEF_FACTS: tuple[Fact, ...] = (
    Fact(
        "What is the capacity of the NorVel Link interconnector to Velmark?",
        "1,400 megawatts",
        "The NorVel Link, a 1,400-megawatt interconnector to Velmark, is due to be "
        "commissioned in 2026.",
    ),
    Fact(
        "How much gas can the Lindås storage facility hold?",
        "1.1 billion cubic metres",
        "The Lindås underground storage facility can hold 1.1 billion cubic metres of gas.",
    ),
    Fact(
        "What offshore wind capacity does Northland plan in the Grey Sea by 2030?",
        "4.5 gigawatts",
        "Offshore wind capacity in the Grey Sea is planned to reach 4.5 gigawatts by 2030, up "
        "from 1.2 gigawatts today.",
    ),
    Fact(
        "How many LNG cargoes did the Ærøby terminal receive in its first twelve months?",
        "61",
        "It received 61 cargoes in its first twelve months of operation, most of them from "
        "Norway, Qatar and the United States.",
    ),
    Fact(
        "When does the Energy Agency recommend starting a hydrogen pilot at Ærøby?",
        "2027",
        "The Agency recommends that the Government start a hydrogen pilot at Ærøby in 2027 to "
        "prepare the terminal for green fuels.",
    ),
)


def _markdown_page(blocks: tuple[Block, ...]) -> str:
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append("#" * block.level + " " + block.text)
        elif isinstance(block, Paragraph):
            parts.append(_fill(block.text, 88))
        else:
            parts.append("\n".join(_fill("- " + item, 88, indent="  ") for item in block.items))
    return "\n\n".join(parts) + "\n"


def _fill(text: str, width: int, indent: str = "") -> str:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = indent + word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return "\n".join(lines)


def _blocks_truth(number: int, blocks: tuple[Block, ...]) -> dict[str, Any]:
    headings = [{"text": b.text, "level": b.level} for b in blocks if isinstance(b, Heading)]
    sentences = [s for b in blocks if isinstance(b, Paragraph) for s in split_sentences(b.text)]
    bullets = [collapse(i) for b in blocks if isinstance(b, Bullets) for i in b.items]
    return _page_truth(number, None, headings, sentences, bullets=bullets)


def write_brief_markdown(path: Path) -> dict[str, Any]:
    """Write the Markdown brief (pages separated by a form-feed line) and return its truth."""
    path.write_text("\n\f\n".join(_markdown_page(p) for p in BRIEF), encoding="utf-8")
    pages = [_blocks_truth(i + 1, blocks) for i, blocks in enumerate(BRIEF)]
    return {
        "page_count": len(pages),
        "title": BRIEF_TITLE,
        "pages": pages,
        "facts": _facts_truth(BRIEF_FACTS, pages),
    }


# --- HTML note ---------------------------------------------------------------

NOTE_TITLE = "Northland–Astoria Relations | Situation Note, March 2025"

NOTE: tuple[Block, ...] = (
    Heading("Northland–Astoria Relations", 1),
    Paragraph("Ministry of Foreign Affairs of Northland, Astoria Desk, 21 March 2025."),
    Heading("Political Relations", 2),
    Paragraph(
        "Relations between the Republic of Northland and the Federation of Astoria are at their "
        "lowest point since 1991. In February 2025 Astoria expelled four Northland diplomats "
        "from its capital, Korvograd, and Northland responded by expelling four Astorian "
        "diplomats from Halvik. The Astorian ambassador, Pavel Dorin, has not been received at "
        "ministerial level since the Iron Winter exercise in February 2024."
    ),
    Heading("Trade and Border Crossings", 2),
    Paragraph(
        "Trade between the two countries fell by 47 per cent between 2021 and 2024, to 2.3 "
        "billion crowns. Two of the five road crossings on the border, at Kessel and Rauma, "
        "have been closed since January 2024. The remaining crossings are open to freight and "
        "to holders of residence permits."
    ),
    Heading("Channels of Dialogue", 2),
    Paragraph(
        "The informal café dialogue between officials of the two countries, held in neutral "
        "Velmark since 2016, met twice in 2024. Northland will use it to discuss incident "
        "prevention in the Skarn Strait and the return of the remains of soldiers from the 1940 "
        "war. The Minister of Defence, Åsa Lindqvist, supports keeping the channel open."
    ),
    Heading("Outlook", 2),
    Paragraph(
        "The Astoria Desk expects relations to remain tense at least until the Astorian "
        "presidential election in 2026. Any improvement would depend on an end to the transit "
        "restrictions on Northland lorries and on progress in the talks on the Skarn Strait."
    ),
)

NOTE_FACTS: tuple[Fact, ...] = (
    Fact(
        "How many Northland diplomats did Astoria expel in February 2025?",
        "four",
        "In February 2025 Astoria expelled four Northland diplomats from its capital, "
        "Korvograd, and Northland responded by expelling four Astorian diplomats from Halvik.",
    ),
    Fact(
        "By how much did trade between Northland and Astoria fall between 2021 and 2024?",
        "47 per cent, to 2.3 billion crowns",
        "Trade between the two countries fell by 47 per cent between 2021 and 2024, to 2.3 "
        "billion crowns.",
    ),
    Fact(
        "Which border crossings with Astoria have been closed since January 2024?",
        "Kessel and Rauma",
        "Two of the five road crossings on the border, at Kessel and Rauma, have been closed "
        "since January 2024.",
    ),
    Fact(
        "Who is Astoria's ambassador to Northland?",
        "Pavel Dorin",
        "The Astorian ambassador, Pavel Dorin, has not been received at ministerial level since "
        "the Iron Winter exercise in February 2024.",
    ),
)

# Text that sits in the note's source but is not visible content.
NOTE_HIDDEN = (
    "Ministry intranet",
    "All briefings",
    "Contact the Astoria Desk",
    "noteMeta",
    "Astoria note loaded",
    "font-family",
    "do not circulate",
)

_NOTE_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: Georgia, serif; max-width: 42em; margin: 2em auto; }}
nav a {{ margin-right: 1em; }}
</style>
<script>
  window.noteMeta = {{ desk: "Astoria", version: "2025-03-21" }};
  console.log("Astoria note loaded");
</script>
</head>
<body>
<!-- Draft reviewed by the Astoria Desk; do not circulate outside the Ministry. -->
<nav>
<a href="/">Ministry intranet</a>
<a href="/briefings">All briefings</a>
<a href="/desks/astoria">Contact the Astoria Desk</a>
</nav>
<main>
"""


def write_note_html(path: Path) -> dict[str, Any]:
    """Write the one-page HTML note and return its truth."""
    body: list[str] = []
    for block in NOTE:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{escape(block.text, quote=False)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{escape(block.text, quote=False)}</p>")
        else:
            items = "".join(f"<li>{escape(i, quote=False)}</li>" for i in block.items)
            body.append(f"<ul>{items}</ul>")
    html = (
        _NOTE_HEAD.format(title=escape(NOTE_TITLE, quote=False))
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )
    path.write_text(html, encoding="utf-8")
    pages = [_blocks_truth(1, NOTE)]
    return {
        "page_count": 1,
        "title": NOTE_TITLE,
        "pages": pages,
        "hidden_strings": list(NOTE_HIDDEN),
        "facts": _facts_truth(NOTE_FACTS, pages),
    }


# --- Synthetic long report ---------------------------------------------------

LONG_SEED = 20250314
LONG_LINES_PER_PAGE = 45
LONG_HEADER = "Republic of Northland | Synthetic Benchmark Report"
LONG_VOCABULARY = (
    "security",
    "defence",
    "energy",
    "cyber",
    "alliance",
    "border",
    "strategy",
    "resilience",
    "ministry",
    "government",
    "capability",
    "budget",
    "investment",
    "reserve",
    "network",
    "grid",
    "pipeline",
    "terminal",
    "supply",
    "storage",
    "exercise",
    "brigade",
    "navy",
    "army",
    "air",
    "force",
    "coast",
    "region",
    "municipality",
    "citizen",
    "threat",
    "risk",
    "assessment",
    "cooperation",
    "partner",
    "treaty",
    "agreement",
    "report",
    "council",
    "parliament",
    "agency",
    "infrastructure",
    "transport",
    "port",
    "cable",
    "satellite",
    "intelligence",
    "deterrence",
    "preparedness",
    "shelter",
    "stock",
    "ammunition",
    "procurement",
    "industry",
    "export",
    "personnel",
    "training",
    "conscript",
    "volunteer",
    "guard",
    "crisis",
    "response",
    "plan",
    "review",
    "target",
    "period",
    "annual",
    "national",
    "northern",
    "strategic",
    "critical",
    "public",
    "private",
    "civil",
    "military",
    "joint",
    "long-term",
    "regional",
)
LONG_TOPICS = (
    "Strategic Outlook",
    "Regional Security",
    "Energy Supply",
    "Digital Resilience",
    "Allied Cooperation",
    "Force Development",
    "Civil Preparedness",
    "Financial Framework",
)


def _long_lines(rng: random.Random) -> Iterator[tuple[str, bool]]:
    """Endless (line, ends_paragraph) pairs of pseudo-text wrapped to the body width."""
    space = stringWidth(" ", BODY_FONT, BODY_SIZE)
    widths: dict[str, float] = {}
    while True:
        words: list[str] = []
        for _ in range(rng.randint(3, 6)):
            sentence = [rng.choice(LONG_VOCABULARY) for _ in range(rng.randint(9, 22))]
            sentence[0] = sentence[0].capitalize()
            sentence[-1] += "."
            words.extend(sentence)
        line: list[str] = []
        used = 0.0
        for word in words:
            w = widths.get(word)
            if w is None:
                w = widths[word] = stringWidth(word, BODY_FONT, BODY_SIZE)
            if line and used + space + w > BODY_W:
                yield " ".join(line), False
                line, used = [], 0.0
            used += w + (space if line else 0.0)
            line.append(word)
        yield " ".join(line), True


def write_long_pdf(path: Path, pages: int) -> None:
    """Write a synthetic report of ``pages`` pages in the strategy's style.

    Every page has the running header, a footer with the publisher and the page
    number, and up to 45 lines of seeded pseudo-text; a level-1 heading opens
    every fifth page (1, 6, 11, ...) and a level-2 heading opens the pages two
    after it. The output depends only on ``pages``.
    """
    if pages < 1:
        raise ValueError("pages must be at least 1")
    rng = random.Random(LONG_SEED)
    lines = _long_lines(rng)
    canvas = Canvas(str(path), pagesize=A4, invariant=1)
    canvas.setTitle(f"Synthetic Benchmark Report ({pages} pages)")
    canvas.setAuthor(PUBLISHER)
    for number in range(1, pages + 1):
        _draw_header(canvas, LONG_HEADER)
        top = BODY_TOP
        chapter, offset = divmod(number - 1, 5)
        topic = LONG_TOPICS[chapter % len(LONG_TOPICS)]
        heading = {0: (f"{chapter + 1} {topic}", 1), 2: (f"{chapter + 1}.1 {topic} in Detail", 2)}
        if offset in heading:
            text, level = heading[offset]
            size, _, after = HEADING_STYLE[level]
            canvas.setFont(HEADING_FONT, size)
            canvas.drawString(MARGIN_X, top - size, text)
            top -= size * 1.25 + after
        body = canvas.beginText()
        body.setFont(BODY_FONT, BODY_SIZE)
        baseline = top - BODY_SIZE
        for _ in range(LONG_LINES_PER_PAGE):
            if baseline < BODY_MIN_BASELINE:
                break
            line, ends_paragraph = next(lines)
            body.setTextOrigin(MARGIN_X, baseline)
            body.textOut(line)
            baseline -= BODY_LEADING + (PARA_GAP if ends_paragraph else 0.0)
        canvas.drawText(body)
        # Footer last, as in the strategy, so extracted text ends with it.
        _draw_footer(canvas, str(number), with_publisher=True)
        canvas.showPage()
    canvas.save()


# --- Self-check --------------------------------------------------------------


def _pdf_pages(path: Path) -> tuple[list[str | None], list[str], list[str]]:
    """Labels, reader text (superscripts dropped, hyphens re-joined) and raw text per page."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    doc = pdfium.PdfDocument(str(path))
    labels: list[str | None] = []
    texts: list[str] = []
    raws: list[str] = []
    try:
        for i in range(len(doc)):
            labels.append(doc.get_page_label(i) or None)
            textpage = doc[i].get_textpage()
            raw = textpage.get_text_range()
            kept: list[str] = []
            for k in range(textpage.count_chars()):
                char = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, k))
                size = pdfium_c.FPDFText_GetFontSize(textpage.raw, k)
                if char.isdigit() and 0 < size < SUP_SIZE + 0.5:
                    continue  # a raised footnote reference
                kept.append(char)
            # pdfium reports a hyphen that ends a line as U+FFFE (or 0x02) and
            # already drops the line break after it.
            text = re.sub("[\ufffe\x02\xad]", "", "".join(kept))
            texts.append(collapse(text))
            raws.append(raw)
    finally:
        doc.close()
    return labels, texts, raws


def _check_page_items(name: str, page: dict[str, Any], text: str) -> list[str]:
    problems: list[str] = []
    items = [h["text"] for h in page["headings"]]
    items += page["sentences"] + page["footnotes"] + page["bullets"]
    for item in items:
        if item not in text:
            problems.append(f"{name} p{page['number']}: missing {item!r}")
    return problems


def _check_facts(name: str, truth: dict[str, Any], texts: list[str]) -> list[str]:
    return [
        f"{name}: fact quote not on page {f['page']}: {f['quote']!r}"
        for f in truth["facts"]
        if f["quote"] not in texts[f["page"] - 1]
    ]


def _body_text(text: str, page: dict[str, Any], truth: dict[str, Any]) -> str:
    """Page text without running header, footer and footnotes."""
    text = text.removeprefix(truth["running_header"]).strip()
    text = text.removesuffix(f"{truth['running_footer']} {page['label']}").strip()
    for note in page["footnotes"]:
        text = text.replace(note, " ")
    return collapse(text)


def check_pdf(path: Path, truth: dict[str, Any]) -> list[str]:
    labels, texts, raws = _pdf_pages(path)
    name = path.name
    problems: list[str] = []
    if len(texts) != truth["page_count"]:
        return [f"{name}: {len(texts)} pages, expected {truth['page_count']}"]
    for page, label, text in zip(truth["pages"], labels, texts, strict=True):
        if label != page["label"]:
            problems.append(
                f"{name} p{page['number']}: label {label!r}, expected {page['label']!r}"
            )
        problems += _check_page_items(name, page, text)
        body_page = page["number"] > FRONT_PAGES
        if body_page != text.startswith(truth["running_header"]):
            problems.append(f"{name} p{page['number']}: running header wrong")
        footer = f"{truth['running_footer']} {page['label']}" if body_page else page["label"]
        if not text.endswith(footer):
            problems.append(f"{name} p{page['number']}: footer is not {footer!r}")
    for cross in truth["cross_page_sentences"]:
        first, last = cross["pages"]
        bodies = [_body_text(texts[n - 1], truth["pages"][n - 1], truth) for n in (first, last)]
        joined = collapse(" ".join(bodies))
        if cross["text"] not in joined or any(cross["text"] in b for b in bodies):
            problems.append(f"{name}: cross-page sentence not split over {first}-{last}")
    for hyphen in truth["hyphenations"]:
        word, raw = hyphen["word"], raws[hyphen["page"] - 1]
        if not any(
            word[:k] + m + word[k:] in raw for k in range(2, len(word) - 1) for m in "\ufffe\x02-"
        ):
            problems.append(f"{name}: {word!r} is not hyphenated on page {hyphen['page']}")
    return problems + _check_facts(name, truth, texts)


def check_markdown(path: Path, truth: dict[str, Any]) -> list[str]:
    name = path.name
    pages = path.read_text(encoding="utf-8").split("\n\f\n")
    if len(pages) != truth["page_count"]:
        return [f"{name}: {len(pages)} pages, expected {truth['page_count']}"]
    problems: list[str] = []
    texts: list[str] = []
    for page, source in zip(truth["pages"], pages, strict=True):
        headings = [
            {"text": m.group(2), "level": len(m.group(1))}
            for m in re.finditer(r"^(#+) (.+)$", source, re.MULTILINE)
        ]
        if headings != page["headings"]:
            problems.append(f"{name} p{page['number']}: headings {headings}")
        text = collapse(re.sub(r"^(#+ |- )", "", source, flags=re.MULTILINE))
        texts.append(text)
        problems += _check_page_items(name, page, text)
    return problems + _check_facts(name, truth, texts)


def check_html(path: Path, truth: dict[str, Any]) -> list[str]:
    from bs4 import BeautifulSoup, Comment

    name = path.name
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    problems: list[str] = []
    title = soup.title.get_text() if soup.title else None
    if title != truth["title"]:
        problems.append(f"{name}: title {title!r}")
    for tag in soup(["script", "style", "nav", "title"]):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    text = collapse(soup.get_text(" "))
    page = truth["pages"][0]
    headings = [{"text": h.get_text(), "level": int(h.name[1])} for h in soup(["h1", "h2", "h3"])]
    if headings != page["headings"]:
        problems.append(f"{name}: headings {headings}")
    problems += _check_page_items(name, page, text)
    problems += [
        f"{name}: hidden text visible: {s!r}" for s in truth["hidden_strings"] if s in text
    ]
    return problems + _check_facts(name, truth, [text])


def check(directory: Path = SAMPLES_DIR) -> list[str]:
    """Compare the written samples with their truth and with a fresh, in-memory run."""
    truth = json.loads((directory / TRUTH_NAME).read_text(encoding="utf-8"))["files"]
    problems = check_pdf(directory / PDF_NAME, truth[PDF_NAME])
    problems += check_markdown(directory / MD_NAME, truth[MD_NAME])
    problems += check_html(directory / HTML_NAME, truth[HTML_NAME])
    facts = sum(len(t["facts"]) for t in truth.values())
    if facts < 12:
        problems.append(f"only {facts} facts")
    with tempfile.TemporaryDirectory() as tmp:
        write_samples(Path(tmp))
        for file in (PDF_NAME, MD_NAME, HTML_NAME, TRUTH_NAME):
            if _sha256(Path(tmp) / file) != _sha256(directory / file):
                problems.append(f"{file}: a second run gives different bytes")
    return problems


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- Entry point -------------------------------------------------------------


def write_samples(directory: Path = SAMPLES_DIR) -> None:
    files = {
        PDF_NAME: write_strategy_pdf(directory / PDF_NAME),
        MD_NAME: write_brief_markdown(directory / MD_NAME),
        HTML_NAME: write_note_html(directory / HTML_NAME),
    }
    text = json.dumps({"files": files}, ensure_ascii=False, indent=2) + "\n"
    (directory / TRUTH_NAME).write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the files after writing")
    args = parser.parse_args(argv)
    write_samples()
    if not args.check:
        return 0
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    print("check: " + ("FAILED" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""A realistic sample network as network CSV text (docs/network-csv.md), for demos and tests.

:func:`generate_network_csv` draws companies of mixed kinds (telecom distributors, electrical
wholesalers, office equipment resellers, IT integrators, craftsmen and installers), sizes,
tiers and regions (the 13 metropolitan regions, Guadeloupe, La Réunion, Belgium), then their
contacts: one director each, often a correspondent, and sellers. Equipment follows the
domain (DESIGN.md §1): white-collar staff have a personal email and web access; craftsmen
and blue-collar staff often share a generic mailbox or have no email, and some have no web
access. Everything comes from small embedded tables and one seeded :class:`random.Random`,
so a seed always gives the same file.

Every row is made to pass :func:`network_anim.network.network_csv.parse_network_csv`: addresses are
checked against the 6 × 38 postal block with the longest name the tables can produce,
phone numbers are kept only when ``phonenumbers`` reads them back as intended, emails use
``.example`` domains (RFC 2606) only.
"""

from __future__ import annotations

import csv
import io
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import phonenumbers

from network_anim.channels.postal import PostalAddress, address_block_problems

HEADER = (
    "company_id", "company_name", "sector", "size", "tier", "region", "delivery_point",
    "building", "street", "locality", "postcode", "city", "country", "contact_id", "civility",
    "first_name", "last_name", "role", "level", "email", "email_kind", "mobile", "phone",
    "web_access", "consent_email", "consent_sms", "consent_print", "consent_intranet",
    "consent_flash", "timezone", "language",
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Places: real city and postcode pairs, grouped by region.


@dataclass(frozen=True, slots=True)
class _Place:
    city: str
    postcode: str
    region: str
    area: str  # "mainland", "GP", "RE" or "BE": numbering plan, time zone, country
    landline: str  # national prefix of the local landlines ("04", "0590", "2"...)


_MAINLAND_CITIES: dict[str, list[tuple[str, str, str]]] = {
    "Auvergne-Rhône-Alpes": [
        ("Lyon", "69003", "04"), ("Villeurbanne", "69100", "04"), ("Grenoble", "38000", "04"),
        ("Clermont-Ferrand", "63000", "04"), ("Saint-Étienne", "42000", "04"),
        ("Annecy", "74000", "04"),
    ],
    "Bourgogne-Franche-Comté": [("Dijon", "21000", "03"), ("Besançon", "25000", "03")],
    "Bretagne": [
        ("Rennes", "35000", "02"), ("Brest", "29200", "02"), ("Vannes", "56000", "02"),
        ("Saint-Brieuc", "22000", "02"),
    ],
    "Centre-Val de Loire": [("Tours", "37000", "02"), ("Orléans", "45000", "02")],
    "Corse": [("Ajaccio", "20000", "04"), ("Bastia", "20200", "04")],
    "Grand Est": [
        ("Strasbourg", "67000", "03"), ("Metz", "57000", "03"), ("Reims", "51100", "03"),
        ("Nancy", "54000", "03"),
    ],
    "Hauts-de-France": [("Lille", "59000", "03"), ("Amiens", "80000", "03"),
                        ("Roubaix", "59100", "03")],
    "Île-de-France": [
        ("Paris", "75011", "01"), ("Paris", "75015", "01"), ("Nanterre", "92000", "01"),
        ("Montreuil", "93100", "01"), ("Créteil", "94000", "01"), ("Massy", "91300", "01"),
        ("Cergy", "95000", "01"),
    ],
    "Normandie": [("Rouen", "76000", "02"), ("Caen", "14000", "02"), ("Le Havre", "76600", "02")],
    "Nouvelle-Aquitaine": [
        ("Bordeaux", "33000", "05"), ("Limoges", "87000", "05"), ("Poitiers", "86000", "05"),
        ("La Rochelle", "17000", "05"), ("Pau", "64000", "05"),
    ],
    "Occitanie": [
        ("Toulouse", "31000", "05"), ("Montpellier", "34000", "04"), ("Nîmes", "30000", "04"),
        ("Perpignan", "66000", "04"),
    ],
    "Pays de la Loire": [("Nantes", "44000", "02"), ("Angers", "49000", "02"),
                         ("Le Mans", "72000", "02")],
    "Provence-Alpes-Côte d'Azur": [
        ("Marseille", "13008", "04"), ("Nice", "06000", "04"), ("Toulon", "83000", "04"),
        ("Aix-en-Provence", "13100", "04"), ("Avignon", "84000", "04"),
    ],
}  # fmt: skip
# How often a region comes up once each has had its company (roughly its economic weight).
_REGION_WEIGHTS = {
    "Île-de-France": 6, "Auvergne-Rhône-Alpes": 4, "Provence-Alpes-Côte d'Azur": 3,
    "Nouvelle-Aquitaine": 3, "Occitanie": 3, "Hauts-de-France": 3, "Grand Est": 2,
    "Pays de la Loire": 2, "Bretagne": 2, "Normandie": 2, "Bourgogne-Franche-Comté": 1,
    "Centre-Val de Loire": 1, "Corse": 1,
}  # fmt: skip
_GUADELOUPE = [
    _Place("Pointe-à-Pitre", "97110", "Guadeloupe", "GP", "0590"),
    _Place("Baie-Mahault", "97122", "Guadeloupe", "GP", "0590"),
    _Place("Les Abymes", "97139", "Guadeloupe", "GP", "0590"),
]
_REUNION = [
    _Place("Saint-Denis", "97400", "La Réunion", "RE", "0262"),
    _Place("Saint-Pierre", "97410", "La Réunion", "RE", "0262"),
    _Place("Le Port", "97420", "La Réunion", "RE", "0262"),
]
_BRUSSELS = [_Place("Bruxelles", "1000", "Belgique", "BE", "2")]
_WALLONIA = [
    _Place("Liège", "4000", "Belgique", "BE", "4"),
    _Place("Namur", "5000", "Belgique", "BE", "81"),
    _Place("Charleroi", "6000", "Belgique", "BE", "71"),
]
# The companies outside mainland France, in the order they are added as the network grows.
_SPECIAL_PLACES = (_GUADELOUPE, _BRUSSELS, _REUNION, _WALLONIA)
_AREA_COUNTRY = {"mainland": "FR", "GP": "FR", "RE": "FR", "BE": "BE"}
_AREA_TIMEZONE = {
    "mainland": "Europe/Paris",
    "GP": "America/Guadeloupe",
    "RE": "Indian/Reunion",
    "BE": "Europe/Brussels",
}
# The names a company takes from where it is ("Alpes Bureautique", "Nord Réseaux...").
_REGION_NAMES = {
    "Auvergne-Rhône-Alpes": ["Alpes", "Rhône", "Auvergne", "Dauphiné", "Savoie"],
    "Bourgogne-Franche-Comté": ["Bourgogne", "Franche-Comté", "Jura"],
    "Bretagne": ["Armor", "Bretagne", "Iroise", "Breizh"],
    "Centre-Val de Loire": ["Val de Loire", "Centre", "Touraine", "Berry"],
    "Corse": ["Corse", "Cyrnos"],
    "Grand Est": ["Alsace", "Lorraine", "Champagne", "Grand Est"],
    "Hauts-de-France": ["Nord", "Flandres", "Picardie", "Opale"],
    "Île-de-France": ["Paris", "Seine", "Francilienne", "Capitale"],
    "Normandie": ["Normandie", "Cotentin", "Seine"],
    "Nouvelle-Aquitaine": ["Atlantique", "Aquitaine", "Gironde", "Charentes", "Limousin"],
    "Occitanie": ["Occitanie", "Midi", "Garonne", "Languedoc", "Pyrénées"],
    "Pays de la Loire": ["Loire", "Atlantique", "Vendée", "Anjou", "Maine"],
    "Provence-Alpes-Côte d'Azur": ["Sud", "Provence", "Méditerranée", "Azur"],
    "Guadeloupe": ["Antilles", "Caraïbes", "Karukera"],
    "La Réunion": ["Océan Indien", "Réunion", "Bourbon"],
    "Belgique": ["Benelux", "Belgique", "Brabant", "Meuse"],
}

# ---------------------------------------------------------------------------------------------
# Companies: kinds, sizes, tiers, names.

_KIND_SHARES = {"telecom": 0.30, "electrical": 0.20, "office": 0.15, "it": 0.17, "installer": 0.18}
_WHITE_COLLAR = ("telecom", "it", "office")
_SIZE_WEIGHTS = {
    "telecom": {"TPE": 3, "PME": 5, "ETI": 2},
    "electrical": {"TPE": 1, "PME": 5, "ETI": 4},
    "office": {"TPE": 4, "PME": 5, "ETI": 1},
    "it": {"TPE": 2, "PME": 5, "ETI": 3},
    "installer": {"TPE": 17, "PME": 3, "ETI": 0},
}
_TIER_WEIGHTS = {
    "TPE": {"bronze": 12, "silver": 7, "gold": 1, "platinum": 0},
    "PME": {"bronze": 4, "silver": 9, "gold": 6, "platinum": 1},
    "ETI": {"bronze": 0, "silver": 4, "gold": 9, "platinum": 7},
}
_HEADCOUNT = {"TPE": (2, 5), "PME": (6, 14), "ETI": (15, 30)}  # drawn, then scaled to the total
# {city}, {region} (a name from _REGION_NAMES) and {surname} (the founder, who then directs).
_NAME_TEMPLATES = {
    "telecom": [
        "Télécom Services {city}", "{region} Réseaux Distribution", "{region} Télécom Pro",
        "Com'Pro {city}", "Téléphonie {region}", "{surname} Télécom", "Connect {region}",
        "Distri-Com {region}", "Voix & Données {city}", "Allo Pro {city}",
    ],
    "electrical": [
        "Comptoir Électrique {region}", "{region} Matériel Électrique", "Élec Négoce {city}",
        "Établissements {surname}", "Distrélec {region}", "{surname} Électro Distribution",
        "Négoce Électrique {city}",
    ],
    "office": [
        "{city} Bureautique", "{region} Bureautique", "Bureau Conseil {region}",
        "Copie Services {city}", "Impression & Bureau {city}", "{surname} Bureautique",
    ],
    "it": [
        "{region} Systèmes", "{surname} Informatique", "Réseau & Cloud {city}",
        "Datalink {region}", "{city} Informatique Services", "Infogérance {region}",
        "Numérique {region}",
    ],
    "installer": [
        "Électricité {surname} & Fils", "{surname} Installations", "SARL {surname} Courants Faibles",
        "{surname} Électricité Générale", "Ets {surname} et Fils", "Câblage {surname}",
        "{surname} Domotique", "{surname} Antennes et Réseaux",
    ],
}  # fmt: skip
_SHORT_TRADES = {
    "electricite": "elec", "electro": "elec", "installations": "install", "courants": "cf",
    "antennes": "antennes", "etablissements": "ets", "informatique": "info",
}  # fmt: skip
_DOMAIN_STOPWORDS = frozenset({"sarl", "sas", "ets", "et", "de", "la", "le", "les", "du", "des"})

# ---------------------------------------------------------------------------------------------
# Addresses.

_STREETS = {
    "rue": [
        "de la République", "Victor Hugo", "Jean Jaurès", "Pasteur", "de l'Industrie",
        "des Frères Lumière", "Ampère", "Denis Papin", "Gustave Eiffel", "du Commerce",
        "de la Gare", "Nationale", "des Artisans", "Édouard Branly", "Émile Zola", "de Verdun",
    ],
    "avenue": [
        "du Général de Gaulle", "de l'Europe", "Jean Moulin", "de la Libération",
        "Pierre Mendès France", "Foch", "Aristide Briand", "de la Marne",
    ],
    "boulevard": ["Gambetta", "Michelet", "de Strasbourg", "Voltaire", "Carnot", "Victor Hugo"],
    "route": ["de la Forêt", "des Vignes", "du Lac", "de la Plaine", "de la Mer", "Nationale"],
    "chemin": ["des Vignes", "du Moulin", "de la Source", "des Prés", "de Halage"],
    "place": ["de la Gare", "du Marché", "de l'Église", "de la Mairie", "de la Liberté"],
    "allée": ["des Tilleuls", "des Peupliers", "des Érables", "Alan Turing", "Nikola Tesla"],
    "impasse": ["des Artisans", "du Four", "des Lilas", "de l'Atelier"],
}  # fmt: skip
_TOWN_STREET_TYPES = {"rue": 8, "avenue": 4, "boulevard": 3, "place": 1, "allée": 1}
_PARK_STREET_TYPES = {"rue": 5, "allée": 3, "impasse": 2, "route": 2, "chemin": 1}
_PARKS = ["ZA", "ZI", "Parc d'activités", "ZAC"]
_PARK_NAMES = [
    "des Landes", "du Moulin", "de la Plaine", "des Bruyères", "du Bois Joli", "des Vignes",
    "de la Gare", "du Pont", "des Chênes", "de Beaulieu", "du Grand Pré", "de la Croix Blanche",
]  # fmt: skip
_OFFICE_BUILDINGS = [
    "Bâtiment A", "Bâtiment B", "Bâtiment C", "Immeuble Le Central", "Immeuble Horizon",
    "Le Carré d'Affaires", "Espace Europe", "Les Bureaux du Lac",
]  # fmt: skip
_KNOWN_PARKS = {"Baie-Mahault": "ZI de Jarry"}  # the real business park of the town
_DELIVERY_POINTS = {
    "telecom": ["Service commercial", "Direction commerciale", "Service achats"],
    "it": ["Service commercial", "Direction commerciale", "Service achats"],
    "office": ["Service commercial", "Service achats"],
    "electrical": ["Service achats", "Comptoir professionnel", "Service commercial"],
    "installer": ["Service technique"],
}
_BELGIAN_STREETS = [
    "Rue de la Station", "Chaussée de Bruxelles", "Avenue des Combattants", "Rue du Parc",
    "Rue de l'Industrie", "Boulevard Industriel", "Rue des Français",
]  # fmt: skip

# ---------------------------------------------------------------------------------------------
# People.

_FIRST_NAMES_M = [
    "Thomas", "Nicolas", "Julien", "Sébastien", "Guillaume", "Maxime", "Antoine", "Alexandre",
    "Pierre", "Jérôme", "Laurent", "Stéphane", "Christophe", "David", "Olivier", "Frédéric",
    "Philippe", "Patrick", "Éric", "Vincent", "François", "Mathieu", "Romain", "Hugo", "Lucas",
    "Kevin", "Benoît", "Cédric", "Fabrice", "Jean-Marc", "Jean-Baptiste", "Jean-Pierre",
    "Bruno", "Franck", "Mickaël", "Anthony", "Damien", "Rémi", "Karim", "Mehdi", "Yannick",
    "Loïc", "Didier", "Ludovic", "Gilles", "Arnaud",
]  # fmt: skip
_FIRST_NAMES_F = [
    "Sophie", "Nathalie", "Isabelle", "Sandrine", "Céline", "Stéphanie", "Aurélie", "Julie",
    "Camille", "Émilie", "Laura", "Marie", "Caroline", "Valérie", "Virginie", "Hélène",
    "Christine", "Claire", "Élodie", "Audrey", "Laetitia", "Pauline", "Manon", "Chloé", "Léa",
    "Anne-Sophie", "Marie-Claire", "Delphine", "Karine", "Sabrina", "Nadia", "Samia", "Agnès",
    "Florence", "Mélanie", "Amandine", "Maryse", "Sylvie", "Laurence", "Inès",
]  # fmt: skip
_LAST_NAMES = [
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
    "Laurent", "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "David", "Bertrand", "Morel",
    "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent",
    "Muller", "Lefèvre", "Faure", "André", "Mercier", "Blanc", "Guérin", "Boyer", "Garnier",
    "Chevalier", "François", "Legrand", "Gauthier", "Garcia", "Perrin", "Robin", "Clément",
    "Morin", "Nicolas", "Henry", "Roussel", "Mathieu", "Gautier", "Masson", "Marchand",
    "Duval", "Denis", "Dumont", "Marie", "Lemaire", "Noël", "Meyer", "Dufour", "Meunier",
    "Brun", "Blanchard", "Giraud", "Joly", "Rivière", "Lucas", "Brunet", "Gaillard", "Barbier",
    "Arnaud", "Martinez", "Gérard", "Roche", "Renard", "Schmitt", "Roy", "Leroux", "Colin",
    "Vidal", "Caron", "Picard", "Roger", "Fabre", "Aubert", "Lemoine", "Renaud", "Dumas",
    "Lacroix", "Olivier", "Philippe", "Bourgeois", "Pierre", "Benoît", "Rey", "Leclerc",
    "Payet", "Rolland", "Leclercq", "Guillaume", "Lecomte", "Lopez", "Jean", "Dupuy",
    "Benali", "Haddad", "Mansouri", "Nguyen", "Da Silva", "Pereira", "Ferreira", "Diallo",
    "Kaya", "Traoré", "Dupré", "Moulin", "Collet", "Prévost", "Carpentier", "Barré",
]  # fmt: skip
_REGIONAL_LAST_NAMES = {
    "Bretagne": ["Le Goff", "Le Gall", "Le Bihan", "Kerbrat", "Guillou", "Tanguy", "Morvan"],
    "Grand Est": ["Muller", "Schmitt", "Meyer", "Weber", "Klein", "Schneider", "Fischer"],
    "Corse": ["Santoni", "Leca", "Casanova", "Albertini", "Luciani", "Paoli"],
    "Hauts-de-France": ["Lefebvre", "Lemaire", "Delattre", "Vandenberghe", "Lecointe"],
    "Occitanie": ["Fabre", "Martinez", "Garcia", "Sanchez", "Bousquet", "Cabrol"],
    "Provence-Alpes-Côte d'Azur": ["Fabre", "Blanc", "Giraud", "Aubert", "Bonifay"],
    "Guadeloupe": [
        "Jean-Baptiste", "Jean-Louis", "Bélise", "Cornélie", "Joseph", "Sainte-Rose",
        "Alexis", "Zénon", "Placide",
    ],
    "La Réunion": ["Payet", "Hoarau", "Grondin", "Fontaine", "Técher", "Rivière", "Maillot"],
    "Belgique": ["Dubois", "Lambert", "Dupont", "Renard", "Lejeune", "Collard", "Piette"],
}  # fmt: skip
_REGIONAL_FIRST_NAMES = {
    "Bretagne": (["Yannick", "Loïc", "Erwan", "Ronan", "Gwenaël"], ["Maëlle", "Gwenaëlle"]),
    "Guadeloupe": (["Didier", "Rudy", "Johan", "Ludovic", "Teddy"], ["Maryse", "Lucie"]),
    "La Réunion": (["Jean-Claude", "Teddy", "Johnny", "Dimitri"], ["Josiane", "Marie-Rose"]),
}
# Brussels staff who prefer English get Flemish names and English civilities.
_FLEMISH_FIRST_NAMES = (
    ["Pieter", "Jan", "Wim", "Bart", "Tom", "Koen", "Joris", "Stijn"],
    ["Els", "An", "Lies", "Sofie", "Katrien", "Anke", "Sarah", "Eva"],
)
_FLEMISH_LAST_NAMES = [
    "Peeters", "Janssens", "Maes", "Jacobs", "Willems", "Claes", "Wouters", "Goossens",
    "De Smet", "Van den Broeck",
]  # fmt: skip

_ROLES_FR: dict[str, dict[str, list[tuple[str, str]]]] = {
    "director": {
        "white": [
            ("directeur", "directrice"), ("gérant", "gérante"),
            ("directeur général", "directrice générale"), ("président", "présidente"),
            ("directeur d'agence", "directrice d'agence"),
        ],
        "electrical": [
            ("directeur d'agence", "directrice d'agence"), ("directeur", "directrice"),
            ("gérant", "gérante"),
        ],
        "installer": [
            ("gérant", "gérante"), ("artisan", "artisane"),
            ("chef d'entreprise", "cheffe d'entreprise"),
        ],
    },
    "correspondent": {
        "white": [
            ("responsable agence", "responsable agence"),
            ("assistant commercial", "assistante commerciale"),
            ("correspondant réseau", "correspondante réseau"),
            ("chef des ventes", "cheffe des ventes"),
            ("responsable marketing", "responsable marketing"),
            ("responsable ADV", "responsable ADV"),
        ],
        "electrical": [
            ("responsable agence", "responsable agence"),
            ("chef des ventes", "cheffe des ventes"),
            ("responsable comptoir", "responsable comptoir"),
            ("assistant commercial", "assistante commerciale"),
        ],
        "installer": [
            ("responsable technique", "responsable technique"),
            ("conducteur de travaux", "conductrice de travaux"),
            ("assistant administratif", "assistante administrative"),
        ],
    },
    "seller": {
        "telecom": [
            ("commercial", "commerciale"), ("technico-commercial", "technico-commerciale"),
            ("ingénieur commercial", "ingénieure commerciale"),
            ("chargé d'affaires", "chargée d'affaires"),
            ("attaché commercial", "attachée commerciale"), ("technicien", "technicienne"),
        ],
        "it": [
            ("commercial", "commerciale"), ("ingénieur avant-vente", "ingénieure avant-vente"),
            ("consultant", "consultante"), ("chargé d'affaires", "chargée d'affaires"),
            ("technicien", "technicienne"),
        ],
        "office": [
            ("commercial", "commerciale"), ("technicien SAV", "technicienne SAV"),
            ("conseiller clientèle", "conseillère clientèle"),
            ("attaché commercial", "attachée commerciale"),
        ],
        "electrical": [
            ("vendeur comptoir", "vendeuse comptoir"),
            ("technico-commercial", "technico-commerciale"),
            ("commercial itinérant", "commerciale itinérante"), ("magasinier", "magasinière"),
        ],
        "installer": [
            ("technicien", "technicienne"), ("électricien", "électricienne"),
            ("installateur", "installatrice"), ("chef de chantier", "cheffe de chantier"),
            ("compagnon", "compagnon"), ("apprenti", "apprentie"),
        ],
    },
}  # fmt: skip
_ROLES_EN = {
    "director": ["managing director", "general manager"],
    "correspondent": ["sales manager", "partner manager"],
    "seller": ["account manager", "sales representative", "presales engineer"],
}

# ---------------------------------------------------------------------------------------------
# Equipment and habits, by kind of company (DESIGN.md §1).


@dataclass(frozen=True, slots=True)
class _Habits:
    generic_mailbox: float  # chance the company has a contact@ box at all
    email: tuple[float, float, float]  # personal, shared (when there is a box), none
    no_web: float
    mobile: float
    female: float
    landline: float  # chance the company's switchboard is on a director's row


_HABITS = {
    "white": _Habits(0.15, (0.94, 0.04, 0.02), 0.015, 0.92, 0.45, 0.6),
    "electrical": _Habits(0.65, (0.72, 0.2, 0.08), 0.06, 0.93, 0.3, 0.6),
    "installer": _Habits(0.85, (0.2, 0.55, 0.25), 0.4, 0.97, 0.15, 0.5),
}
_MAILBOXES = {
    "white": ["contact", "commercial", "info", "accueil"],
    "electrical": ["comptoir", "agence", "contact", "commandes"],
    "installer": ["contact", "atelier", "secretariat", "bureau"],
}
# Shares of the whole network (not drawn row by row: exact counts, whatever the seed).
_EMAIL_OPTED_OUT = 0.02
_EMAIL_BLANK = 0.015
_EMAIL_LEGITIMATE = 0.05  # of personal mailboxes; a shared box is always legitimate interest
_SMS_OPTED_OUT = 0.03
_SMS_BLANK = 0.015
_PRINT_OPTED_OUT = 0.005
_PRINT_BLANK = 0.01


def _group(kind: str) -> str:
    return "white" if kind in _WHITE_COLLAR else kind


@dataclass(slots=True)
class _Company:
    external_id: str
    kind: str
    size: str
    tier: str
    place: _Place
    name: str = ""
    founder: str = ""  # last name in the company name; the director carries it
    domain: str = ""
    mailbox: str = ""  # the shared address, "" when the company has none
    delivery_point: str = ""
    building: str = ""
    street: str = ""
    locality: str = ""
    switchboard: str = ""
    email_style: str = "first.last"
    contacts: list[dict[str, str]] = field(default_factory=list)

    @property
    def country(self) -> str:
        return _AREA_COUNTRY[self.place.area]


def generate_network_csv(*, companies: int = 40, contacts: int = 400, seed: int = 2026) -> str:
    """A sample network of ``companies`` companies and exactly ``contacts`` contacts, as CSV.

    The text is ``;`` separated, with every column of docs/network-csv.md in the header, and
    imports without a single problem. The same arguments always give the same text.
    """
    if companies < 1:
        raise ValueError("companies must be at least 1")
    if contacts < companies:
        raise ValueError("contacts must be at least companies: every company has a director")
    return _Generator(random.Random(seed)).run(companies, contacts)


class _Generator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.names: set[str] = set()
        self.domains: set[str] = set()
        self.numbers: set[str] = set()
        self.decks: dict[str, list[str]] = {}

    def run(self, n_companies: int, n_contacts: int) -> str:
        companies = self._companies(n_companies)
        weights = [self.rng.randint(*_HEADCOUNT[c.size]) for c in companies]
        counter = 0
        for company, headcount in zip(companies, _apportion(weights, n_contacts), strict=True):
            self._name_and_address(company)
            for level in self._levels(headcount):
                counter += 1
                company.contacts.append(self._contact(company, level, f"C{counter:05d}"))
        rows = [row for company in companies for row in company.contacts]
        self._consents(rows)
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows([row[column] for column in HEADER] for row in rows)
        return out.getvalue()

    # Companies ----------------------------------------------------------------------------

    def _companies(self, count: int) -> list[_Company]:
        rng = self.rng
        special = 0 if count < 3 else min(len(_SPECIAL_PLACES), max(2, count // 10))
        places = [rng.choice(group) for group in _SPECIAL_PLACES[:special]]
        regions = list(_MAINLAND_CITIES)
        rng.shuffle(regions)
        mainland = regions[: count - special]
        extra = count - special - len(mainland)
        mainland += rng.choices(regions, [_REGION_WEIGHTS[r] for r in regions], k=extra)
        for region in mainland:
            city, postcode, landline = rng.choice(_MAINLAND_CITIES[region])
            places.append(_Place(city, postcode, region, "mainland", landline))

        shares = list(_KIND_SHARES.values())
        kinds = [
            kind
            for kind, n in zip(_KIND_SHARES, _apportion(shares, count, minimum=0), strict=True)
            for _ in range(n)
        ]
        rng.shuffle(kinds)
        # Overseas and Belgian partners are distributors and resellers, not local craftsmen.
        for i in range(special):
            j = next((j for j in range(i, count) if kinds[j] != "installer"), i)
            kinds[i], kinds[j] = kinds[j], kinds[i]

        order = list(range(count))
        rng.shuffle(order)
        result = []
        for number, i in enumerate(order, start=1):
            kind = kinds[i]
            size = _weighted(rng, _SIZE_WEIGHTS[kind])
            result.append(
                _Company(
                    external_id=f"D{number:03d}",
                    kind=kind,
                    size=size,
                    tier=_weighted(rng, _TIER_WEIGHTS[size]),
                    place=places[i],
                )
            )
        return result

    def _name_and_address(self, company: _Company) -> None:
        rng = self.rng
        place = company.place
        for attempt in range(100):
            founder = self._last_name(place.region, flemish=False)
            template = self._template(company.kind)
            name = template.format(
                city=place.city, region=rng.choice(_REGION_NAMES[place.region]), surname=founder
            )
            if name in self.names and attempt < 99:
                continue
            if name in self.names:
                name = f"{name} {company.external_id}"
            break
        self.names.add(name)
        company.name = name
        company.founder = founder if "{surname}" in template else ""
        company.domain = self._domain(name, place.city, company.founder)
        group = _group(company.kind)
        habits = _HABITS[group]
        if rng.random() < habits.generic_mailbox:
            company.mailbox = f"{rng.choice(_MAILBOXES[group])}@{company.domain}"
        styles = ["first.last"] * 3 + ["f.last"] + (["first"] if company.size == "TPE" else [])
        company.email_style = rng.choice(styles)
        company.switchboard = self._landline(place)
        for _ in range(50):
            self._address(company)
            if not address_block_problems(_worst_case_address(company)):
                return
        # Only a name at the very limit gets here: the plainest address then fits.
        company.delivery_point = company.building = company.locality = ""
        company.street = "1 rue de la Gare" if company.country == "FR" else "Rue du Parc 1"
        assert not address_block_problems(_worst_case_address(company)), company.name

    def _address(self, company: _Company) -> None:
        rng = self.rng
        place = company.place
        in_park = company.kind in ("electrical", "installer") and rng.random() < 0.7
        in_park = in_park or (company.kind in _WHITE_COLLAR and rng.random() < 0.25)
        company.delivery_point = company.building = company.locality = ""
        if place.area == "BE":
            company.street = f"{rng.choice(_BELGIAN_STREETS)} {rng.randint(1, 250)}"
            if in_park:
                company.building = f"Zoning {rng.choice(['Nord', 'Sud', 'Est', 'Ouest'])}"
            elif company.size != "TPE" and rng.random() < 0.4:
                company.delivery_point = rng.choice(_DELIVERY_POINTS[company.kind])
            return
        if in_park:
            company.building = _KNOWN_PARKS.get(place.city) or (
                f"{rng.choice(_PARKS)} {rng.choice(_PARK_NAMES)}"
            )
            street_type = _weighted(rng, _PARK_STREET_TYPES)
        else:
            if company.kind in _WHITE_COLLAR and rng.random() < 0.3:
                company.building = rng.choice(_OFFICE_BUILDINGS)
            street_type = _weighted(rng, _TOWN_STREET_TYPES)
        number = str(rng.choice([rng.randint(1, 40), rng.randint(1, 40), rng.randint(41, 220)]))
        if rng.random() < 0.06:
            number += rng.choice([" bis", " ter"])
        company.street = f"{number} {street_type} {rng.choice(_STREETS[street_type])}"
        if company.size != "TPE" and rng.random() < 0.4:
            company.delivery_point = rng.choice(_DELIVERY_POINTS[company.kind])
        if not company.building and not company.delivery_point and rng.random() < 0.15:
            box = f"BP {rng.randint(10, 999)}"
            company.locality = (
                box if rng.random() < 0.6 else f"CS {rng.randint(10, 99)}{rng.randint(0, 999):03d}"
            )

    def _template(self, kind: str) -> str:
        """Each name pattern of a kind once before any comes back (no five "Allo Pro")."""
        deck = self.decks.setdefault(kind, [])
        if not deck:
            deck.extend(_NAME_TEMPLATES[kind])
            self.rng.shuffle(deck)
        return deck.pop()

    def _domain(self, name: str, city: str, founder: str) -> str:
        words = [w for w in _ascii_words(name) if w not in _DOMAIN_STOPWORDS]
        slug = "-".join(words)
        if len(slug) > 22 and founder:  # the family name and the trade: bernard-elec
            family = _ascii_words(founder)
            trade = next((w for w in words if w not in family), "pro")
            slug = "-".join([*family, _SHORT_TRADES.get(trade, trade)])
        if len(slug) > 22:  # initials, but a town keeps its name: vd-pointe-a-pitre
            town = name.endswith(city) and len(name) > len(city)
            head = _ascii_words(name[: -len(city)]) if town else words[:-1]
            tail = _ascii_words(city) if town else words[-1:]
            initials = "".join(w[0] for w in head if w not in _DOMAIN_STOPWORDS)
            slug = "-".join(part for part in [initials, *tail] if part)
        candidate = slug
        if candidate in self.domains:
            candidate = f"{slug}-{'-'.join(_ascii_words(city))}"
        suffix = 2
        while candidate in self.domains:
            candidate, suffix = f"{slug}{suffix}", suffix + 1
        self.domains.add(candidate)
        return f"{candidate}.example"

    def _levels(self, headcount: int) -> list[str]:
        correspondent = headcount >= 3 and self.rng.random() < 0.75
        correspondent = correspondent or (headcount == 2 and self.rng.random() < 0.25)
        levels = ["director"] + ["correspondent"] * correspondent
        return levels + ["seller"] * (headcount - len(levels))

    # Contacts -----------------------------------------------------------------------------

    def _contact(self, company: _Company, level: str, contact_id: str) -> dict[str, str]:
        rng = self.rng
        place = company.place
        group = _group(company.kind)
        habits = _HABITS[group]
        english = place.city == "Bruxelles" and rng.random() < 0.5
        female = rng.random() < (0.6 if level == "correspondent" else habits.female)
        taken = {(c["first_name"], c["last_name"]) for c in company.contacts}
        for attempt in range(50):  # a huge company may run out of names: then twins happen
            first = self._first_name(place.region, female, flemish=english)
            if level == "director" and company.founder:
                last = company.founder
            else:
                last = self._last_name(place.region, flemish=english)
            # Namesakes happen (family businesses) but should stay rare in one company.
            namesake = any(c["last_name"] == last for c in company.contacts)
            if (first, last) not in taken and (not namesake or rng.random() < 0.1):
                break
            if attempt == 49:
                break
        if english:
            civility, role = ("Ms" if female else "Mr"), rng.choice(_ROLES_EN[level])
        else:
            civility = "Mme" if female else "M."
            roles = _ROLES_FR[level]
            role = rng.choice(roles[company.kind if level == "seller" else group])[female]

        personal, shared, _none = habits.email
        draw = rng.random()
        if draw < personal or (
            draw < personal + shared and not company.mailbox and level != "seller"
        ):
            email, email_kind = self._personal_email(company, first, last), "personal"
        elif draw < personal + shared and company.mailbox:
            email, email_kind = company.mailbox, "shared"
        else:
            email, email_kind = "", ""
        mobile = ""
        if not email or rng.random() < habits.mobile:
            mobile = self._mobile(place)
        phone = ""
        switchboard = {"director": habits.landline, "correspondent": 0.4}.get(level, 0.0)
        if rng.random() < switchboard:
            phone = company.switchboard
        elif level == "seller" and rng.random() < 0.08:
            phone = self._landline(place)  # a direct line
        web_access = "no" if rng.random() < habits.no_web else "yes"
        return {
            "company_id": company.external_id,
            "company_name": company.name,
            "sector": company.kind,
            "size": company.size,
            "tier": company.tier,
            "region": place.region,
            "delivery_point": company.delivery_point,
            "building": company.building,
            "street": company.street,
            "locality": company.locality,
            "postcode": place.postcode,
            "city": place.city,
            "country": company.country,
            "contact_id": contact_id,
            "civility": civility,
            "first_name": first,
            "last_name": last,
            "role": role,
            "level": level,
            "email": email,
            "email_kind": email_kind,
            "mobile": mobile,
            "phone": phone,
            "web_access": web_access,
            "consent_email": "",
            "consent_sms": "",
            "consent_print": "",
            "consent_intranet": "",
            "consent_flash": "",
            "timezone": _AREA_TIMEZONE[place.area],
            "language": "en" if english else "fr",
        }

    def _first_name(self, region: str, female: bool, *, flemish: bool) -> str:
        if flemish:
            return self.rng.choice(_FLEMISH_FIRST_NAMES[female])
        regional = _REGIONAL_FIRST_NAMES.get(region)
        if regional and self.rng.random() < 0.35:
            return self.rng.choice(regional[female])
        return self.rng.choice(_FIRST_NAMES_F if female else _FIRST_NAMES_M)

    def _last_name(self, region: str, *, flemish: bool) -> str:
        if flemish:
            return self.rng.choice(_FLEMISH_LAST_NAMES)
        regional = _REGIONAL_LAST_NAMES.get(region)
        share = 0.6 if region in ("Guadeloupe", "La Réunion", "Belgique") else 0.25
        if regional and self.rng.random() < share:
            return self.rng.choice(regional)
        return self.rng.choice(_LAST_NAMES)

    def _personal_email(self, company: _Company, first: str, last: str) -> str:
        first_part, last_part = "-".join(_ascii_words(first)), "".join(_ascii_words(last))
        styles = {
            "first.last": f"{first_part}.{last_part}",
            "f.last": f"{first_part[0]}.{last_part}",
            "first": first_part,
        }
        used = {c["email"] for c in company.contacts}
        local = styles[company.email_style]
        if f"{local}@{company.domain}" in used:
            local = styles["first.last"]
        base, suffix = local, 2
        while f"{local}@{company.domain}" in used:
            local, suffix = f"{base}{suffix}", suffix + 1
        return f"{local}@{company.domain}"

    # Phone numbers ------------------------------------------------------------------------

    def _mobile(self, place: _Place) -> str:
        rng = self.rng
        while True:
            if place.area == "mainland":
                national = rng.choice("6667") + _digits(rng, 8)
            elif place.area == "GP":
                national = "690" + _digits(rng, 6)
            elif place.area == "RE":
                national = rng.choice(["692", "693"]) + _digits(rng, 6)
            else:
                national = "4" + rng.choice("6789") + _digits(rng, 7)
            text = _phone_text(rng, place.area, national)
            if national not in self.numbers and _reads_back(text, place.area, mobile=True):
                self.numbers.add(national)
                return text

    def _landline(self, place: _Place) -> str:
        rng = self.rng
        while True:
            prefix = place.landline.lstrip("0")
            national = prefix + _digits(rng, (9 if place.area != "BE" else 8) - len(prefix))
            text = _phone_text(rng, place.area, national)
            if national not in self.numbers and _reads_back(text, place.area, mobile=False):
                self.numbers.add(national)
                return text

    # Consents -----------------------------------------------------------------------------

    def _consents(self, rows: list[dict[str, str]]) -> None:
        """Usual bases, then exact numbers of opt-outs and blanks (no basis recorded)."""
        rng = self.rng
        total = len(rows)
        with_email = [r for r in rows if r["email"]]
        for row in with_email:
            personal = row["email_kind"] == "personal"
            consent = personal and rng.random() >= _EMAIL_LEGITIMATE
            row["consent_email"] = "consent" if consent else "legitimate_interest"
        with_mobile = [r for r in rows if r["mobile"]]
        for row in with_mobile:
            row["consent_sms"] = "consent"
        for row in rows:
            row["consent_print"] = "legitimate_interest"
        for column, pool, opted_out, blank in (
            ("consent_email", with_email, _EMAIL_OPTED_OUT, _EMAIL_BLANK),
            ("consent_sms", with_mobile, _SMS_OPTED_OUT, _SMS_BLANK),
            ("consent_print", rows, _PRINT_OPTED_OUT, _PRINT_BLANK),
        ):
            n_out = min(len(pool), round(total * opted_out))
            n_blank = min(len(pool) - n_out, round(total * blank))
            picked = rng.sample(pool, n_out + n_blank)
            for row in picked[:n_out]:
                row[column] = "opted_out"
            for row in picked[n_out:]:
                row[column] = ""


# ---------------------------------------------------------------------------------------------
# Helpers.


def _apportion(weights: Sequence[float], total: int, *, minimum: int = 1) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder), ``minimum`` each."""
    rest = total - minimum * len(weights)
    scale = rest / sum(weights)
    exact = [w * scale for w in weights]
    counts = [minimum + int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (int(exact[i]) - exact[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _ascii_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    return re.findall(r"[a-z0-9]+", folded.replace("'", ""))


def _pairs(digits: str) -> str:
    return " ".join(digits[i : i + 2] for i in range(0, len(digits), 2))


_COUNTRY_CODES = {"mainland": "33", "GP": "590", "RE": "262", "BE": "32"}


def _phone_text(rng: random.Random, area: str, national: str) -> str:
    """The number as people type it in a spreadsheet: mostly national, some international."""
    style = rng.random()
    if area == "BE":  # +32 470 12 34 56 (mobile), +32 2 512 34 56, +32 81 23 45 67
        if len(national) == 9:
            return f"+32 {national[:3]} {_pairs(national[3:])}"
        if national[0] in "234":
            return f"+32 {national[0]} {national[1:4]} {_pairs(national[4:])}"
        return f"+32 {national[:2]} {_pairs(national[2:])}"
    if area == "mainland":
        if style < 0.15:
            return "0" + national
        if style < 0.25:
            return f"+33 {national[0]} {_pairs(national[1:])}"
        return _pairs("0" + national)
    # Overseas: "0690 12 34 56", the way people there write it.
    if style < 0.15:
        return f"+{_COUNTRY_CODES[area]} {national[:3]} {_pairs(national[3:])}"
    return f"0{national[:3]} {_pairs(national[3:])}"


_AREA_REGION = {"mainland": "FR", "GP": "GP", "RE": "RE", "BE": "BE"}
_OVERSEAS = ("GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")


def _reads_back(text: str, area: str, *, mobile: bool) -> bool:
    """Whether the importer reads ``text`` as a valid number of ``area`` of the right type.

    Same steps as :mod:`network_anim.network.network_csv`: parse with the company's country, then
    try the overseas departments for a French national number that is not valid in France.
    """
    country = _AREA_COUNTRY[area]
    try:
        number = phonenumbers.parse(text, country)
        if not phonenumbers.is_valid_number(number) and country == "FR":
            if text.startswith("+"):
                return False
            for overseas in _OVERSEAS:
                number = phonenumbers.parse(text, overseas)
                if phonenumbers.is_valid_number(number):
                    break
    except phonenumbers.NumberParseException:
        return False
    if not phonenumbers.is_valid_number(number):
        return False
    if phonenumbers.region_code_for_number(number) != _AREA_REGION[area]:
        return False
    wanted = (
        phonenumbers.PhoneNumberType.MOBILE if mobile else phonenumbers.PhoneNumberType.FIXED_LINE
    )
    return phonenumbers.number_type(number) == wanted


def _longest(names: Sequence[str]) -> str:
    return max(names, key=len)


# The longest name line any contact can get: an address that fits with it fits with all.
_LONGEST_RECIPIENT = " ".join(
    [
        "Mme",
        _longest(
            [*_FIRST_NAMES_M, *_FIRST_NAMES_F, *_FLEMISH_FIRST_NAMES[0], *_FLEMISH_FIRST_NAMES[1]]
            + [n for pair in _REGIONAL_FIRST_NAMES.values() for names in pair for n in names]
        ),
        _longest(
            [*_LAST_NAMES, *_FLEMISH_LAST_NAMES]
            + [n for names in _REGIONAL_LAST_NAMES.values() for n in names]
        ).upper(),
    ]
)


def _worst_case_address(company: _Company) -> PostalAddress:
    return PostalAddress(
        recipient=_LONGEST_RECIPIENT,
        company=company.name,
        delivery_point=company.delivery_point or None,
        building=company.building or None,
        street=company.street,
        locality=company.locality or None,
        postcode=company.place.postcode,
        city=company.place.city,
        country=company.country,
    )

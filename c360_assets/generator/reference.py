"""Reference data for the world generator: names, places, phone plans, country spellings.

Small, hand-picked lists per country so 1M persons generate in seconds; collisions
("John Smith" many times over) are intended: they are what makes matching hard.
Phone prefixes were chosen so that every generated number is valid for
`phonenumbers` (the library silver normalises with).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Country:
    code: str  # ISO-3166 alpha-2
    weight: float
    spellings: tuple[str, ...]  # how free-text country fields spell it
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    cities: tuple[str, ...]
    streets: tuple[str, ...]
    postal: str  # pattern: 9 = digit, A = letter
    calling_code: str
    mobile_prefixes: tuple[str, ...]  # after the calling code
    subscriber_digits: int
    trunk: str  # national trunk prefix ("" where none)
    domains: tuple[str, ...]


COUNTRIES: tuple[Country, ...] = (
    Country(
        "US", 0.34, ("United States", "USA", "US", "United States of America"),
        ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
         "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
         "Sarah", "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew",
         "Betty", "Anthony", "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven",
         "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle"),
        ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
         "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
         "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
         "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
         "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "O'Connor"),
        ("New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Philadelphia",
         "San Antonio", "San Diego", "Dallas", "Austin", "Seattle", "Denver", "Boston",
         "Miami", "Atlanta", "Portland"),
        ("Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Pine St", "Elm St", "Washington Blvd",
         "Lake View Rd", "Sunset Blvd", "Park Ave", "Hillcrest Dr", "Broadway"),
        "99999", "1",
        ("201", "212", "213", "305", "312", "415", "512", "617", "646", "702", "713", "718",
         "805", "917"), 7, "1",
        ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com", "hotmail.com"),
    ),
    Country(
        "DE", 0.2, ("Germany", "Deutschland", "DE", "germany"),
        ("Lukas", "Anna", "Jonas", "Lea", "Leon", "Lena", "Finn", "Hannah", "Paul", "Sophie",
         "Felix", "Marie", "Maximilian", "Laura", "Jürgen", "Jörg", "Müge", "Sören", "Björn",
         "Käthe", "Uwe", "Sabine", "Klaus", "Petra", "Stefan", "Claudia"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
         "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf",
         "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann",
         "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Lehmann"),
        ("Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main", "Stuttgart",
         "Düsseldorf", "Leipzig", "Dortmund", "Essen", "Bremen", "Dresden", "Walldorf"),
        ("Hauptstraße", "Schulstraße", "Gartenstraße", "Bahnhofstraße", "Dorfstraße",
         "Bergstraße", "Birkenweg", "Lindenstraße", "Kirchstraße", "Waldstraße", "Ringstraße"),
        "99999", "49", ("151", "152", "160", "170", "171", "172", "175", "176"), 8, "0",
        ("gmx.de", "web.de", "t-online.de", "gmail.com", "posteo.de"),
    ),
    Country(
        "GB", 0.15, ("United Kingdom", "UK", "Great Britain", "GB"),
        ("Oliver", "Olivia", "George", "Amelia", "Harry", "Isla", "Jack", "Ava", "Charlie",
         "Emily", "Thomas", "Sophia", "Oscar", "Grace", "William", "Mia", "James", "Poppy",
         "Siobhan", "Niamh", "Rhys", "Eilidh"),
        ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
         "Patel", "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts",
         "Green", "Hall", "Wood", "Jackson", "Clarke", "O'Brien", "McDonald", "Khan"),
        ("London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Liverpool", "Bristol",
         "Edinburgh", "Sheffield", "Cardiff", "Belfast", "Nottingham"),
        ("High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane",
         "Manor Road", "Park Road", "Queen Street", "Mill Lane", "Baker Street"),
        "AA9 9AA", "44", ("74", "75", "78"), 8, "0",
        ("gmail.com", "hotmail.co.uk", "btinternet.com", "outlook.com", "yahoo.co.uk"),
    ),
    Country(
        "FR", 0.1, ("France", "FR", "france"),
        ("Léa", "Hugo", "Chloé", "Louis", "Manon", "Gabriel", "Camille", "Arthur", "Inès",
         "Jules", "Zoé", "Raphaël", "Élodie", "Théo", "Anaïs", "François", "Hélène", "Noël"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
         "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David",
         "Bertrand", "Roux", "Vincent", "Fournier", "Girard", "Bonnet"),
        ("Paris", "Marseille", "Lyon", "Toulouse", "Nice", "Nantes", "Strasbourg",
         "Montpellier", "Bordeaux", "Lille", "Rennes"),
        ("Rue de la Paix", "Rue Victor Hugo", "Avenue Jean Jaurès", "Rue Pasteur",
         "Boulevard Voltaire", "Rue de la République", "Place de l'Église", "Rue du Moulin"),
        "99999", "33", ("61", "62", "64", "65", "66", "67", "68", "75", "76", "77", "78"), 7,
        "0", ("gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr"),
    ),
    Country(
        "ES", 0.05, ("Spain", "España", "ES", "Espana"),
        ("José", "María", "Antonio", "Carmen", "Manuel", "Lucía", "Javier", "Sofía", "Álvaro",
         "Martina", "Íñigo", "Begoña", "Pedro", "Elena", "Raúl", "Nuria"),
        ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
         "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno",
         "Muñoz", "Álvarez", "Romero", "Castillo", "Ortega"),
        ("Madrid", "Barcelona", "Valencia", "Sevilla", "Zaragoza", "Málaga", "Bilbao",
         "Palma", "Alicante", "Córdoba"),
        ("Calle Mayor", "Calle Real", "Avenida de la Constitución", "Calle del Sol",
         "Paseo de Gracia", "Calle Nueva", "Plaza España"),
        "99999", "34", ("6",), 8, "", ("gmail.com", "hotmail.es", "yahoo.es", "telefonica.net"),
    ),
    Country(
        "NL", 0.06, ("Netherlands", "The Netherlands", "Holland", "NL", "Nederland"),
        ("Daan", "Emma", "Sem", "Julia", "Lucas", "Tess", "Levi", "Sophie", "Finn", "Zoë",
         "Bram", "Fleur", "Jan", "Anouk", "Pieter", "Sanne"),
        ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen",
         "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters"),
        ("Amsterdam", "Rotterdam", "Den Haag", "Utrecht", "Eindhoven", "Groningen", "Tilburg",
         "Almere", "Breda", "Nijmegen"),
        ("Kerkstraat", "Dorpsstraat", "Stationsweg", "Molenweg", "Schoolstraat", "Julianalaan",
         "Beatrixstraat", "Wilhelminastraat"),
        "9999 AA", "31", ("61", "62", "63", "64", "65", "68"), 7, "0",
        ("gmail.com", "ziggo.nl", "kpnmail.nl", "hotmail.nl", "outlook.com"),
    ),
    Country(
        "CA", 0.05, ("Canada", "CA", "canada"),
        ("Liam", "Olivia", "Noah", "Emma", "Ethan", "Charlotte", "Benjamin", "Amélie",
         "Mathis", "Chloé", "Logan", "Félix", "Maëlle", "Jacob", "Sophie"),
        ("Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie",
         "Fortin", "Smith", "Brown", "Wilson", "MacDonald", "Campbell", "Bélanger"),
        ("Toronto", "Montréal", "Vancouver", "Calgary", "Ottawa", "Edmonton", "Québec",
         "Winnipeg", "Halifax"),
        ("King Street", "Yonge Street", "Rue Sainte-Catherine", "Main Street",
         "Queen Street West", "O'Connor Street", "Granville Street", "Jasper Avenue"),
        "A9A 9A9", "1", ("416", "604", "514", "613", "403"), 7, "1",
        ("gmail.com", "hotmail.com", "yahoo.ca", "videotron.ca", "shaw.ca"),
    ),
    Country(
        "AT", 0.05, ("Austria", "Österreich", "AT", "Oesterreich"),
        ("Lukas", "Anna", "David", "Laura", "Tobias", "Lena", "Florian", "Katharina", "Matthias",
         "Theresa", "Jürgen", "Grete"),
        ("Gruber", "Huber", "Bauer", "Wagner", "Müller", "Pichler", "Steiner", "Moser",
         "Mayer", "Hofer", "Leitner", "Berger", "Fuchs", "Eder", "Fischer", "Schmid"),
        ("Wien", "Graz", "Linz", "Salzburg", "Innsbruck", "Klagenfurt", "Villach", "Wels"),
        ("Hauptplatz", "Bahnhofstraße", "Kirchengasse", "Schulgasse", "Mariahilfer Straße",
         "Landstraße", "Ringstraße"),
        "9999", "43", ("664", "650", "676", "699"), 7, "0",
        ("gmx.at", "aon.at", "gmail.com", "chello.at"),
    ),
)

COMPANY_WORDS = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Wonka", "Hooli", "Vandelay",
    "Cyberdyne", "Soylent", "Tyrell", "Gringotts", "Dunder", "Pied Piper", "Massive Dynamic",
    "Aperture", "Black Mesa", "Oscorp", "Virtucon", "Nakatomi", "Monarch", "Prestige",
    "Sterling", "Bluth", "Krusty", "Planet", "Oceanic", "Wernham", "Zorg",
)
COMPANY_SUFFIXES = ("Inc", "GmbH", "Ltd", "SA", "BV", "LLC", "AG", "Group", "Corp")
INDUSTRIES = ("Technology", "Retail", "Manufacturing", "Healthcare", "Finance", "Education",
              "Media", "Logistics")
PRODUCTS = ("Adobe Experience Manager", "Adobe Analytics", "Adobe Target",
            "Adobe Campaign", "Real-Time CDP", "Journey Optimizer", "Marketo Engage",
            "Workfront", "Commerce Cloud")
ASSET_STATUSES = ("Purchased", "Shipped", "Installed", "Registered", "Obsolete")
ROLE_MAILBOXES = ("info", "sales", "support", "contact", "office")
JUNK_EMAILS = ("test@test.com", "noreply@example.com", "none@none.com")

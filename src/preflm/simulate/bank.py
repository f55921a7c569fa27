"""Prompt and content bank of the Attributes world.

Each prompt carries a question and a short neutral core answer (2-4 factual
sentences, the first one answering on its own). The neutral content avoids
the scorers' marker words so that an unstyled answer scores near 0 on every
attribute; style transforms then add the markers. Prompt ids are
``"<topic>.<slug>"`` and never depend on list position, so they stay stable.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PromptEntry",
    "PROMPTS",
    "TOPICS",
    "TOPIC_EXTRAS",
    "GENERIC_EXTRAS",
    "TOPIC_FOLLOWUPS",
    "TOPIC_QUIPS",
    "get_prompt",
]


@dataclass(frozen=True)
class PromptEntry:
    """A user prompt and its neutral core answer sentences."""

    prompt_id: str
    topic: str
    question: str
    content: tuple[str, ...]


_RAW: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "cooking": [
        ("fluffy-rice", "How do I cook fluffy rice on the stove?", (
            "Rinse the rice until the water runs clear, then simmer it covered in about one and a half cups of water per cup of rice.",
            "Keep the lid on during cooking so the steam stays in the pot.",
            "Let it rest off the heat for ten minutes before fluffing it with a fork.",
        )),
        ("sharp-knives", "How do I keep my kitchen knives sharp?", (
            "Hone the blade on a steel every few uses and sharpen it on a whetstone a few times a year.",
            "Cut on wood or plastic boards rather than glass or stone.",
            "Wash knives by hand and dry them right away instead of using the dishwasher.",
        )),
        ("salt-pasta-water", "Should I salt the water when boiling pasta?", (
            "Yes, salt the water generously, roughly one tablespoon per four litres, because pasta absorbs it as it cooks.",
            "Adding oil to the water is unnecessary and makes sauce slide off the pasta.",
            "Save a cup of the starchy water to loosen and bind the sauce at the end.",
        )),
        ("sear-steak", "How do I get a good sear on a steak?", (
            "Pat the steak dry, season it, and cook it in a very hot heavy pan with a little oil.",
            "Leave it undisturbed for a few minutes so a crust can form before flipping.",
            "Rest the meat for five minutes after cooking so the juices redistribute.",
        )),
        ("bread-rise", "Why did my bread dough not rise?", (
            "The most common cause is inactive yeast, either expired or killed by water that was too hot.",
            "Dough also rises slowly in a cold kitchen, so a warm spot around 25 degrees Celsius helps.",
            "Test yeast by mixing it with warm water and sugar, and it should foam within ten minutes.",
        )),
        ("onions-crying", "How can I chop onions without crying?", (
            "Chill the onion for fifteen minutes and use a sharp knife so fewer cells are crushed.",
            "Cutting near a running extractor fan or an open window carries the irritating gas away.",
            "Leave the root end intact until last, since it holds the most irritant.",
        )),
        ("meal-prep", "How do I start meal prepping for the week?", (
            "Pick two or three recipes that reheat well and cook them in bulk on one day.",
            "Store portions in airtight containers and keep them in the fridge for up to four days.",
            "Freeze anything you plan to eat later in the week to keep it fresh.",
        )),
        ("cast-iron", "How do I care for a cast iron pan?", (
            "Clean it with hot water and a brush, dry it on the stove, and wipe on a thin layer of oil.",
            "Avoid soaking it, because standing water causes rust.",
            "Cooking fatty foods in it regularly builds up the non-stick seasoning over time.",
        )),
        ("boil-egg", "How long should I boil an egg?", (
            "Lower eggs into boiling water and cook them for six to seven minutes for jammy yolks or ten minutes for hard yolks.",
            "Move them into ice water right after cooking to stop the heat and make peeling easier.",
            "Older eggs peel more easily than very fresh ones.",
        )),
        ("store-spices", "How should I store spices?", (
            "Keep spices in airtight jars away from heat, light and moisture, so not above the stove.",
            "Whole spices keep their flavour for a few years while ground spices fade after about a year.",
            "Smell a spice before using it, since a weak aroma means weak flavour.",
        )),
        ("salty-soup", "How do I fix a soup that is too salty?", (
            "Dilute it with unsalted stock or water and adjust the other seasonings to match.",
            "A splash of acid such as lemon juice or vinegar balances the taste of salt.",
            "Adding more vegetables or unsalted grains also spreads the salt over a larger volume.",
        )),
        ("egg-substitute", "What can I use instead of eggs in baking?", (
            "One tablespoon of ground flaxseed mixed with three tablespoons of water replaces one egg in most recipes.",
            "Mashed banana or apple sauce works well in cakes and muffins, adding moisture and sweetness.",
            "Recipes that rely on eggs for structure, such as souffles, do not adapt well to substitutes.",
        )),
        ("leftovers", "How long are leftovers safe to eat?", (
            "Most cooked leftovers keep for three to four days in a fridge at or below 5 degrees Celsius.",
            "Cool food and refrigerate it within two hours of cooking to limit bacterial growth.",
            "Reheat leftovers until they are steaming hot all the way through.",
        )),
    ],
    "travel": [
        ("pack-light", "How can I pack light for a two week trip?", (
            "Pack clothes for about one week in neutral colours that mix and match, and plan to do laundry once.",
            "Wear your bulkiest shoes and jacket on the plane instead of packing them.",
            "Use packing cubes and decant toiletries into small bottles to save space.",
        )),
        ("jet-lag", "How do I deal with jet lag?", (
            "Shift your sleep schedule an hour a day toward the destination time zone a few days before you leave.",
            "On arrival, get daylight in the morning and stay awake until a normal local bedtime.",
            "Drink water on the flight and limit alcohol and caffeine.",
        )),
        ("cheap-flights", "How do I find cheap flights?", (
            "Compare prices on a flight search engine with flexible dates, since shifting by a day or two often saves money.",
            "Flying midweek and booking one to three months ahead for domestic routes tends to be cheaper.",
            "Set price alerts and consider nearby alternative airports.",
        )),
        ("insurance", "Do I need travel insurance?", (
            "Travel insurance is worth it when you would struggle to cover emergency medical costs or lost bookings abroad.",
            "Check whether your credit card or health plan already covers trips.",
            "Read the policy for exclusions such as existing conditions and adventure sports.",
        )),
        ("lost-passport", "What should I do if I lose my passport abroad?", (
            "Report the loss to the local police and contact your embassy or consulate for an emergency travel document.",
            "Bring a photo ID, a copy of the passport if you have one, and passport photos to the appointment.",
            "Keeping a digital copy of your passport in your email makes this process faster.",
        )),
        ("solo-safety", "How do I stay safe while travelling solo?", (
            "Share your itinerary with someone at home and check in with them regularly.",
            "Choose well reviewed accommodation in central areas and arrive during daylight when you can.",
            "Keep a backup card and some cash separate from your main wallet.",
        )),
        ("hostels", "What should I know before staying in a hostel?", (
            "Bring a padlock for the lockers, earplugs, and flip flops for the showers.",
            "Read recent reviews for cleanliness and noise, and book a smaller dorm if you want more sleep.",
            "Hostels are a good place to meet other travellers through shared kitchens and organised events.",
        )),
        ("money-abroad", "What is the best way to handle money abroad?", (
            "Use a card with no foreign transaction fees and withdraw cash from bank machines in the local currency.",
            "Decline dynamic currency conversion when a machine offers to charge you in your home currency.",
            "Tell your bank your travel dates so your card is not blocked.",
        )),
        ("road-trip", "How should I prepare my car for a road trip?", (
            "Check tyre pressure and tread, oil, coolant and washer fluid before you leave.",
            "Pack a spare tyre, jumper cables, a first aid kit and water.",
            "Plan rest stops every two hours to stay alert.",
        )),
        ("local-language", "Should I learn some of the local language before a trip?", (
            "Learning greetings, numbers and a few courtesy phrases makes daily interactions much smoother.",
            "Locals tend to respond warmly to any effort, even with a strong accent.",
            "An offline translation app covers the situations your phrases do not.",
        )),
        ("carry-on", "What can I bring in my carry-on bag?", (
            "Liquids in carry-on bags are usually limited to containers of 100 millilitres inside one clear resealable bag.",
            "Sharp objects and tools over a set length go in checked luggage.",
            "Lithium batteries and power banks travel in the cabin, not in the hold.",
        )),
        ("visa", "How do I know if I need a visa?", (
            "Check the official government website of the country you are visiting, using your passport nationality.",
            "Many countries require six months of passport validity beyond your travel dates.",
            "Apply well ahead, since some visas take several weeks to process.",
        )),
        ("long-flight", "How do I stay comfortable on a long flight?", (
            "Choose an aisle seat if you want to stretch, and walk around the cabin every couple of hours.",
            "Wear loose layers and compression socks to help circulation.",
            "Bring a neck pillow, an eye mask and noise cancelling headphones to sleep.",
        )),
    ],
    "programming": [
        ("learn-python", "What is the best way to start learning Python?", (
            "Start with the official tutorial and write small programs every day, such as a calculator or a to-do list.",
            "Typing out and changing examples teaches more than reading alone.",
            "Once the syntax feels familiar, build a project you care about to practise real problem solving.",
        )),
        ("git-undo", "How do I undo my last git commit?", (
            "Run git reset --soft HEAD~1 to undo the commit but keep your changes staged.",
            "Use git revert instead if the commit is already pushed, since it creates a new commit that reverses it.",
            "A hard reset discards the changes entirely, so use it only when you mean to lose them.",
        )),
        ("debugging", "How should I approach debugging a program?", (
            "Reproduce the bug reliably first, then narrow down where the behaviour diverges from what you expect.",
            "Read the full error message and stack trace, which usually point to the failing line.",
            "Use a debugger or targeted print statements, and change one thing at a time.",
        )),
        ("code-review", "How do I give good code review feedback?", (
            "Focus on correctness, readability and design rather than personal style preferences.",
            "Explain why a change helps and suggest a concrete alternative when you point out a problem.",
            "Keep reviews small and timely so authors can act on them quickly.",
        )),
        ("unit-tests", "Why should I write unit tests?", (
            "Unit tests catch regressions early and let you refactor without fear of breaking things.",
            "Writing tests also pushes you toward smaller functions with clear inputs and outputs.",
            "Run them automatically on every commit with a continuous integration service.",
        )),
        ("sql-or-nosql", "Should I use SQL or NoSQL for my project?", (
            "Use a relational SQL database when your data has clear relationships and you need transactions.",
            "Document or key-value stores suit flexible schemas and very high write volumes.",
            "For most small and medium projects, PostgreSQL is a strong default.",
        )),
        ("rest-api", "What makes a good REST API?", (
            "Use clear resource names, standard HTTP methods and meaningful status codes.",
            "Version the API and document every endpoint with request and response examples.",
            "Return consistent error formats so clients can handle failures predictably.",
        )),
        ("slow-code", "How do I make my slow code faster?", (
            "Profile first to find where the time goes, because the bottleneck is often not where you expect.",
            "Better algorithms and data structures give bigger gains than micro-optimisations.",
            "Cache repeated work and batch input and output operations.",
        )),
        ("naming", "How should I name variables?", (
            "Choose names that describe what the value means, such as invoice_total instead of x.",
            "Match the length to the scope, with short names for tiny loops and descriptive names elsewhere.",
            "Follow the naming conventions of your language and codebase consistently.",
        )),
        ("regex", "How do I get better at regular expressions?", (
            "Practise on an interactive tester that highlights matches and explains each part of the pattern.",
            "Learn character classes, quantifiers, anchors and groups first, since they cover most needs.",
            "Keep long patterns readable with comments or verbose mode.",
        )),
        ("memory-leak", "How do I find a memory leak?", (
            "Measure memory over time under a repeatable workload to confirm the growth.",
            "Use a heap profiler to compare snapshots and see which objects accumulate.",
            "Common causes are caches without limits, unclosed resources and lingering references in global lists.",
        )),
        ("first-language", "Which programming language should I learn first?", (
            "Python is a popular first language because its syntax is readable and it is used widely.",
            "JavaScript is a strong choice if you want to build websites, since it runs in every browser.",
            "The concepts transfer between languages, so the first choice matters less than practising consistently.",
        )),
        ("docker", "What is Docker used for?", (
            "Docker packages an application with its dependencies into a container that runs the same way on any machine.",
            "Containers start quickly and use fewer resources than full virtual machines.",
            "A Dockerfile describes how to build the image, which makes environments reproducible.",
        )),
    ],
    "health": [
        ("sleep-better", "How can I sleep better?", (
            "Keep a consistent sleep and wake time, even on weekends.",
            "Keep the bedroom dark, quiet and cool, and avoid screens for an hour before bed.",
            "Limit caffeine after midday and heavy meals late in the evening.",
        )),
        ("water-intake", "How much water should I drink a day?", (
            "A common guideline is around two to three litres of fluids a day, including water from food.",
            "Needs rise with heat, exercise and illness.",
            "Pale yellow urine is a practical sign that you are drinking enough.",
        )),
        ("tension-headache", "What helps with a tension headache?", (
            "Rest, hydration and an over-the-counter pain reliever help most tension headaches.",
            "A warm compress on the neck or gentle stretching relaxes tight muscles.",
            "See a doctor if headaches are sudden and severe or come with fever, confusion or weakness.",
        )),
        ("cut-sugar", "How can I cut down on sugar?", (
            "Start with drinks, since sodas and sweetened coffees are the largest source of added sugar for many people.",
            "Read labels, because sugar hides in sauces, bread and yoghurt.",
            "Reduce gradually so your taste adapts, and keep fruit on hand for cravings.",
        )),
        ("stress", "How can I manage everyday stress?", (
            "Regular exercise, enough sleep and time outdoors lower baseline stress.",
            "Slow breathing, such as four seconds in and six seconds out, calms the body within minutes.",
            "Writing down worries and breaking tasks into small steps makes them feel manageable.",
        )),
        ("desk-posture", "How do I improve my posture at a desk?", (
            "Set the screen at eye level and keep your feet flat with your knees at roughly hip height.",
            "Stand up and move every thirty to forty-five minutes.",
            "Strengthening the upper back and core helps you hold a neutral position naturally.",
        )),
        ("common-cold", "How do I recover faster from a cold?", (
            "Rest, fluids and warm drinks help the body fight the virus, which usually clears within a week to ten days.",
            "Saline nasal spray and honey in warm water ease congestion and sore throats.",
            "Antibiotics do not work against colds because colds are caused by viruses.",
        )),
        ("eye-strain", "How do I reduce eye strain from screens?", (
            "Every twenty minutes, look at something twenty feet away for twenty seconds.",
            "Match screen brightness to the room and increase text size.",
            "Blink often, and use lubricating drops if your eyes feel dry.",
        )),
        ("healthy-snacks", "What are some healthy snacks?", (
            "Nuts, fruit, yoghurt, hummus with vegetables and boiled eggs are filling, nutritious snacks.",
            "Pairing protein or fat with fibre keeps you full longer than sugary snacks.",
            "Preparing portions in advance avoids reaching for crisps out of convenience.",
        )),
        ("sunscreen", "How should I use sunscreen?", (
            "Use a broad-spectrum sunscreen of at least SPF 30 and apply it generously fifteen minutes before going out.",
            "Reapply every two hours and after swimming or sweating.",
            "UV rays reach the skin through clouds, so wear it on overcast days too.",
        )),
        ("caffeine-limit", "How much caffeine is too much?", (
            "For most healthy adults, up to about 400 milligrams of caffeine a day, roughly four cups of coffee, is considered safe.",
            "Pregnant people and those with heart conditions or anxiety are advised to have less.",
            "Caffeine stays in the body for hours, so an afternoon coffee disrupts sleep.",
        )),
        ("vitamin-d", "Do I need vitamin D supplements?", (
            "Many people in northern climates run low on vitamin D in winter because sunlight is weaker.",
            "A blood test tells you whether your levels are low.",
            "Health services in several countries suggest 10 micrograms a day during the darker months.",
        )),
        ("walking", "Is walking good exercise?", (
            "Yes, brisk walking improves heart health, mood and blood sugar control.",
            "Aim for about 150 minutes of moderate activity a week, such as thirty minutes on five days.",
            "Walking is low impact, so it suits most ages and fitness levels.",
        )),
    ],
    "finance": [
        ("budget", "How do I make a budget?", (
            "List your monthly income and fixed costs, then set limits for flexible spending such as food and entertainment.",
            "The 50/30/20 rule splits income into needs, wants and savings.",
            "Track spending for a month to see where the money actually goes.",
        )),
        ("emergency-fund", "How big should my emergency fund be?", (
            "A common target is three to six months of essential expenses.",
            "Keep it in an easy-access savings account separate from your everyday account.",
            "Build it gradually with an automatic transfer each payday.",
        )),
        ("index-funds", "What are index funds?", (
            "An index fund holds all the stocks in a market index, such as the S&P 500, so you own a small slice of many companies.",
            "They have low fees because nobody is paid to pick stocks.",
            "Over long periods, most actively managed funds fail to beat their index after fees.",
        )),
        ("debt-or-save", "Should I pay off debt or save first?", (
            "Build a small emergency buffer first, then focus on paying off high-interest debt such as credit cards.",
            "Paying off a card charging 20 percent interest is like earning a risk-free 20 percent return.",
            "Keep taking any employer pension match, since that is free money.",
        )),
        ("credit-score", "How can I improve my credit score?", (
            "Pay every bill on time, because payment history has the largest effect on your score.",
            "Keep credit card balances below about 30 percent of the limit.",
            "Avoid opening many new accounts in a short period.",
        )),
        ("retirement-start", "When should I start saving for retirement?", (
            "Start as early as you can, because compound growth gives early contributions decades to grow.",
            "Small monthly amounts in your twenties can outgrow larger amounts started later.",
            "Use tax-advantaged accounts and any employer match first.",
        )),
        ("rent-or-buy", "Is it better to rent or buy a home?", (
            "Buying tends to pay off when you plan to stay at least five to seven years and can afford the upfront costs.",
            "Renting keeps you flexible and avoids maintenance, property taxes and transaction fees.",
            "Compare the total monthly cost of owning with rent plus investing the difference.",
        )),
        ("impulse-spending", "How do I stop impulse spending?", (
            "Wait twenty-four hours before buying anything non-essential over a set amount.",
            "Unsubscribe from shopping emails and remove saved card details from online shops.",
            "Set a monthly allowance for treats so spending feels planned rather than forbidden.",
        )),
        ("inflation", "What is inflation?", (
            "Inflation is the general rise in prices over time, which means each unit of money buys less.",
            "Central banks usually aim for around two percent a year.",
            "Savings that earn less than inflation lose value in real terms.",
        )),
        ("compound-interest", "How does compound interest work?", (
            "Compound interest pays interest on both your original money and the interest already earned.",
            "At seven percent a year, money roughly doubles every ten years.",
            "The earlier you start, the more time compounding has to work.",
        )),
        ("side-income", "How can I earn some extra income?", (
            "Sell a skill you already have, such as tutoring, writing or design, on freelance platforms.",
            "Selling unused items or renting out spare space brings in quick cash.",
            "Track the extra income for taxes from the start.",
        )),
        ("stock-picking", "Should I pick individual stocks?", (
            "For most people, a diversified low-cost index fund beats picking individual stocks over time.",
            "Single companies carry high risk, and even professionals struggle to choose winners consistently.",
            "Limit individual stocks to a small share of your portfolio if you enjoy picking them.",
        )),
        ("subscriptions", "How do I cut down on subscriptions?", (
            "List every recurring charge from your bank statements for the last three months.",
            "Cancel anything you have not used in the past month, and rotate streaming services instead of keeping several.",
            "Set reminders before free trials end.",
        )),
    ],
    "science": [
        ("sky-blue", "Why is the sky blue?", (
            "Sunlight scatters off air molecules, and shorter blue wavelengths scatter much more than red ones.",
            "This scattered blue light reaches your eyes from every direction in the sky.",
            "At sunset light travels through more air, so more blue is scattered away and reds dominate.",
        )),
        ("seasons", "What causes the seasons?", (
            "The seasons come from the tilt of the axis of the Earth, about 23.5 degrees, not from changes in distance to the Sun.",
            "When a hemisphere tilts toward the Sun, it gets more direct sunlight and longer days.",
            "That is why the northern and southern hemispheres have opposite seasons.",
        )),
        ("photosynthesis", "How does photosynthesis work?", (
            "Plants use light energy to turn carbon dioxide and water into glucose, releasing oxygen.",
            "Chlorophyll absorbs mainly red and blue light, which is why leaves look green.",
            "The glucose fuels growth and is stored as starch.",
        )),
        ("black-holes", "What is a black hole?", (
            "A black hole is a region where gravity is so strong that not even light can escape.",
            "Most form when massive stars collapse at the end of their lives.",
            "The boundary beyond which escape is impossible is called the event horizon.",
        )),
        ("vaccines", "How do vaccines work?", (
            "Vaccines train the immune system by showing it a harmless piece or version of a germ.",
            "The body makes antibodies and memory cells, so it responds faster if it meets the real germ.",
            "Widespread vaccination also protects people who cannot be vaccinated.",
        )),
        ("tides", "What causes ocean tides?", (
            "Tides are caused mainly by the gravity of the Moon pulling on the oceans, creating bulges of water.",
            "The Earth rotates through these bulges, giving most coasts two high tides a day.",
            "When the Sun and Moon line up, their combined pull produces larger spring tides.",
        )),
        ("dna", "What is DNA?", (
            "DNA is the molecule that stores genetic instructions in all living organisms.",
            "It is a double helix made of four bases whose order encodes genes.",
            "Cells copy their DNA before dividing so each new cell gets a full set of instructions.",
        )),
        ("greenhouse-effect", "What is the greenhouse effect?", (
            "Greenhouse gases such as carbon dioxide trap heat radiated from the surface of the Earth, warming the planet.",
            "Without this effect the Earth would be about 33 degrees colder.",
            "Burning fossil fuels adds extra carbon dioxide, strengthening the effect and driving climate change.",
        )),
        ("rainbows", "How do rainbows form?", (
            "Sunlight enters raindrops, bends, reflects off the back of the drop and splits into colours.",
            "Each colour leaves at a slightly different angle, about 42 degrees for red.",
            "You see a rainbow when the Sun is behind you and rain is in front of you.",
        )),
        ("atoms", "What are atoms made of?", (
            "Atoms have a dense nucleus of protons and neutrons surrounded by electrons.",
            "The number of protons defines the element, such as six for carbon.",
            "Protons and neutrons are themselves made of smaller particles called quarks.",
        )),
        ("antibiotic-resistance", "Why is antibiotic resistance a problem?", (
            "Bacteria evolve to survive antibiotics, especially when the drugs are overused or courses are cut short.",
            "Resistant infections are harder to treat and make routine surgery riskier.",
            "Using antibiotics only when prescribed and finishing the course slows resistance.",
        )),
        ("speed-of-light", "How fast does light travel?", (
            "Light travels at about 300,000 kilometres per second in a vacuum.",
            "Sunlight takes a little over eight minutes to reach the Earth.",
            "Light slows down in materials such as glass and water, which causes refraction.",
        )),
        ("boiling-altitude", "Why does water boil at a lower temperature at altitude?", (
            "Air pressure is lower at altitude, so water molecules need less energy to escape as vapour.",
            "At 3,000 metres water boils at roughly 90 degrees Celsius.",
            "This is why cooking times are longer in the mountains.",
        )),
    ],
    "history": [
        ("fall-of-rome", "Why did the Western Roman Empire fall?", (
            "Historians point to a mix of causes, including political instability, economic strain and pressure from migrating peoples.",
            "The empire was divided, and the western half lost control of its provinces during the fifth century.",
            "The removal of the last western emperor in 476 is the traditional end date.",
        )),
        ("printing-press", "Why was the printing press important?", (
            "The press of Johannes Gutenberg, around 1440, made books far cheaper and faster to produce.",
            "Cheaper books spread literacy and new ideas quickly across Europe.",
            "It played a major role in the Reformation and the Scientific Revolution.",
        )),
        ("ww1-causes", "What caused the First World War?", (
            "The assassination of Archduke Franz Ferdinand in 1914 triggered a crisis among rival alliances.",
            "Militarism, imperial competition and nationalism had already raised tensions across Europe.",
            "Alliance commitments pulled the major powers into war within weeks.",
        )),
        ("pyramids", "How were the Egyptian pyramids built?", (
            "Workers quarried limestone blocks with copper tools and moved them on sledges, pouring water on the sand to reduce friction.",
            "Ramps of mud brick and rubble raised the blocks as the pyramid grew.",
            "The builders were paid labourers organised in teams, not slaves.",
        )),
        ("moon-landing", "When did humans first land on the Moon?", (
            "Apollo 11 landed on the Moon on 20 July 1969, and Neil Armstrong was the first person to step onto the surface.",
            "Buzz Aldrin joined him while Michael Collins orbited above.",
            "Twelve astronauts walked on the Moon across six missions up to 1972.",
        )),
        ("industrial-revolution", "What was the Industrial Revolution?", (
            "It was the shift from hand production to machines and factories, beginning in Britain in the late eighteenth century.",
            "Steam power, mechanised textiles and iron making drove the change.",
            "It raised output dramatically and moved millions of people from farms to cities.",
        )),
        ("cold-war", "What was the Cold War?", (
            "The Cold War was a rivalry between the United States and the Soviet Union from about 1947 to 1991.",
            "The two sides competed through alliances, an arms race, the space race and proxy wars rather than direct conflict.",
            "It ended with the collapse of the Soviet Union in 1991.",
        )),
        ("magna-carta", "What is the Magna Carta?", (
            "The Magna Carta was a charter agreed by King John of England in 1215 that limited royal power.",
            "It established that the king was subject to the law.",
            "Later generations treated it as a foundation for rights such as due process.",
        )),
        ("silk-road", "What was the Silk Road?", (
            "The Silk Road was a network of trade routes linking China with Central Asia, the Middle East and Europe.",
            "Merchants traded silk, spices, metals and ideas along it for over a thousand years.",
            "Religions, technologies and diseases also spread along these routes.",
        )),
        ("renaissance", "What was the Renaissance?", (
            "The Renaissance was a cultural movement from the fourteenth to the seventeenth century that began in Italy.",
            "It revived interest in classical Greek and Roman learning and art.",
            "Figures such as Leonardo da Vinci and Michelangelo made major advances in art and science.",
        )),
        ("berlin-wall", "Why did the Berlin Wall fall?", (
            "Mass protests in East Germany and reforms in the Soviet Union weakened the East German government in 1989.",
            "A confused announcement on 9 November led crowds to the crossings, and guards opened the gates.",
            "Germany was reunified less than a year later.",
        )),
        ("french-revolution", "What caused the French Revolution?", (
            "Royal debt, food shortages and an unfair tax system created a crisis in France in the late 1780s.",
            "Enlightenment ideas about rights and popular sovereignty challenged the monarchy.",
            "The storming of the Bastille in 1789 became the symbolic start of the revolution.",
        )),
        ("invention-of-writing", "When was writing invented?", (
            "Writing was invented in Mesopotamia around 3200 BCE, where cuneiform began as a way to record trade.",
            "Egyptian hieroglyphs appeared around the same time.",
            "Writing also developed independently in China and Mesoamerica.",
        )),
    ],
    "career": [
        ("resume", "How do I write a strong resume?", (
            "Lead each role with achievements and numbers rather than duties, such as cutting costs by 15 percent.",
            "Tailor the resume to each job by mirroring the key skills in the posting.",
            "Keep it to one or two pages with a clean layout.",
        )),
        ("interview-prep", "How should I prepare for a job interview?", (
            "Research the company and prepare stories about your experience using the situation, task, action and result structure.",
            "Practise answers out loud, especially for common prompts about strengths and failures.",
            "Prepare a few questions of your own for the interviewer.",
        )),
        ("salary-negotiation", "How do I negotiate a higher salary?", (
            "Research market rates for the role and anchor your request at the upper end of that range.",
            "Let the employer name a number first when you can, and negotiate the whole package, not just base pay.",
            "Support the request with specific results you have delivered.",
        )),
        ("career-change", "How do I change careers?", (
            "Identify the skills that transfer from your current job and the gaps you need to fill.",
            "Test the new field with a course, side project or informational interviews before leaving your job.",
            "Update your resume to tell a clear story about why you are switching.",
        )),
        ("networking", "How do I network without feeling awkward?", (
            "Treat networking as building relationships, and start by being curious about what other people do.",
            "Follow up after meetings with a short message that refers to something you discussed.",
            "Offer help or share useful resources instead of only asking for favours.",
        )),
        ("promotion", "How can I get promoted?", (
            "Tell your manager you want a promotion and ask what the next level requires.",
            "Take on work that shows you can operate at that level and make the results visible.",
            "Collect evidence of your impact over the year for review time.",
        )),
        ("remote-work", "How do I stay productive working from home?", (
            "Keep a dedicated workspace and regular hours that mark the start and end of the workday.",
            "Plan the day with a short list of priorities and block time for focused work.",
            "Take real breaks and go outside to avoid blurring work and rest.",
        )),
        ("cover-letter", "Do I need a cover letter?", (
            "Write one when the application allows it, since a targeted letter helps you stand out.",
            "Explain why you want this particular role and connect two or three achievements to its needs.",
            "Keep it under one page.",
        )),
        ("burnout", "How do I recover from burnout?", (
            "Reduce your workload where you can and talk to your manager about priorities.",
            "Protect sleep, exercise and time away from work to rebuild energy.",
            "Talk to a doctor or therapist if exhaustion persists, since burnout overlaps with depression.",
        )),
        ("difficult-coworker", "How do I deal with a difficult coworker?", (
            "Talk to them privately and describe specific behaviour and its effect rather than their character.",
            "Keep written records of repeated problems.",
            "Involve your manager or human resources if the behaviour continues or becomes harassment.",
        )),
        ("two-offers", "How do I decide between two job offers?", (
            "Compare total compensation, growth opportunities, the manager and the team, not just salary.",
            "Consider commute, flexibility and how the role fits your long-term goals.",
            "Talking to people who work there gives an honest picture of the culture.",
        )),
        ("new-job", "How do I make a good impression at a new job?", (
            "Learn names quickly, ask questions early, and take notes so you do not ask the same thing twice.",
            "Deliver a few small wins in the first months to build trust.",
            "Schedule one-to-one meetings with key colleagues to understand how the team works.",
        )),
        ("linkedin", "How do I improve my LinkedIn profile?", (
            "Use a clear professional photo and a headline that states what you do and for whom.",
            "Write a short summary with your main skills and results.",
            "List concrete achievements under each role and collect a few recommendations.",
        )),
    ],
    "relationships": [
        ("adult-friends", "How do I make friends as an adult?", (
            "Join recurring activities such as clubs, classes or volunteering, since repeated contact builds friendships.",
            "Take the initiative to suggest coffee or a follow-up plan with people you click with.",
            "Friendships take time, often many hours together, so keep showing up.",
        )),
        ("partner-arguments", "How do I handle arguments with my partner?", (
            "Stay on the specific issue and describe your feelings with I statements instead of blame.",
            "Take a break if the discussion gets heated and agree when to return to it.",
            "Listen to understand, and repeat back what you heard before responding.",
        )),
        ("long-distance", "How do I make a long-distance relationship work?", (
            "Schedule regular calls and plan the next visit so there is a date to look forward to.",
            "Share small everyday details, not only big news.",
            "Agree on a shared long-term plan for closing the distance.",
        )),
        ("apologise", "How do I apologise properly?", (
            "Name what you did, acknowledge how it affected the other person, and take responsibility without excuses.",
            "Say what you will do differently next time.",
            "Give them time, since forgiveness does not arrive on demand.",
        )),
        ("say-no", "How do I say no without feeling guilty?", (
            "Give a clear, brief answer without over-explaining, such as saying you cannot take it on right now.",
            "Remember that declining protects time for your existing commitments.",
            "Offer an alternative only if you want to.",
        )),
        ("family-boundaries", "How do I set boundaries with family?", (
            "Decide in advance what you will and will not accept, and state it calmly and clearly.",
            "Follow through with the consequence you described when a boundary is crossed.",
            "Expect some pushback at first, which tends to fade with consistency.",
        )),
        ("loneliness", "What can I do when I feel lonely?", (
            "Reach out to one person today with a message or call, even briefly.",
            "Regular group activities build connection more reliably than occasional big events.",
            "Talk to a professional if loneliness persists and affects your mood.",
        )),
        ("listening", "How can I become a better listener?", (
            "Give full attention, put the phone away, and let the other person finish before you respond.",
            "Ask open questions and summarise what you heard to check your understanding.",
            "Resist the urge to fix the problem unless they ask for advice.",
        )),
        ("breakup", "How do I get over a breakup?", (
            "Allow yourself to grieve and lean on friends and family for support.",
            "Limit contact and social media checking for a while so you can heal.",
            "Rebuild routines around sleep, exercise and activities you enjoy.",
        )),
        ("roommates", "How do I live well with a roommate?", (
            "Agree on chores, guests, noise and shared costs at the start, ideally in writing.",
            "Raise small issues early and directly before they turn into resentment.",
            "Respect the space and belongings of each other.",
        )),
        ("talk-to-teen", "How do I talk to my teenager?", (
            "Choose low-pressure moments such as car rides or cooking together.",
            "Listen more than you lecture and respond calmly to what they share.",
            "Show interest in their world, including their friends and hobbies.",
        )),
        ("rebuild-trust", "How can trust be rebuilt after it is broken?", (
            "The person who broke trust needs to take full responsibility and be transparent going forward.",
            "Trust returns through consistent actions over months, not promises.",
            "Couples counselling helps both people work through the hurt.",
        )),
        ("thoughtful-gift", "How do I choose a thoughtful gift?", (
            "Notice the things the person mentions wanting or struggling with during the year.",
            "Experiences and personalised items tend to mean more than generic gifts.",
            "A handwritten note explaining why you chose the gift adds a personal touch.",
        )),
    ],
    "home": [
        ("paint-room", "How do I paint a room?", (
            "Clean and patch the walls, tape the edges, and apply a primer over dark colours or repairs.",
            "Cut in along edges with a brush, then roll the walls in overlapping W shapes.",
            "Apply two thin coats, letting the first dry fully.",
        )),
        ("leaky-tap", "How do I fix a leaky tap?", (
            "Turn off the water supply under the sink, then remove the handle to reach the cartridge or washer.",
            "Replace the worn washer or cartridge with a matching part from a hardware store.",
            "Reassemble the tap and turn the water back on slowly to check for leaks.",
        )),
        ("heavy-shelf", "How do I hang a heavy shelf?", (
            "Find the studs with a stud finder and screw the brackets directly into them.",
            "Use heavy-duty wall anchors rated for the load if there is no stud where you need one.",
            "Check the bracket level before tightening all the screws.",
        )),
        ("bathroom-mould", "How do I get rid of mould in the bathroom?", (
            "Scrub small patches with a diluted bleach solution or white vinegar while wearing gloves.",
            "Improve ventilation by running the extractor fan during showers and for twenty minutes after.",
            "Recurring mould points to a moisture problem, such as a leak, that needs fixing.",
        )),
        ("unclog-drain", "How do I unclog a drain?", (
            "Start with a plunger, covering the overflow hole to build pressure.",
            "Pour in baking soda followed by vinegar, wait fifteen minutes, then flush with hot water.",
            "For hair clogs, a plastic drain snake pulls out the blockage.",
        )),
        ("energy-bills", "How can I lower my energy bills?", (
            "Seal draughts around windows and doors and add insulation to the loft.",
            "Lower the thermostat by one degree and use a programmable schedule.",
            "Switch to LED bulbs and turn devices off at the wall.",
        )),
        ("declutter", "How do I declutter my home?", (
            "Work on one small area at a time, such as a single drawer, so progress is visible.",
            "Sort items into keep, donate and discard, and remove the donate pile the same day.",
            "Give every kept item a home so clutter does not return.",
        )),
        ("houseplants", "How do I keep houseplants alive?", (
            "Water when the top few centimetres of soil are dry rather than on a fixed schedule, since overwatering kills most houseplants.",
            "Match each plant to the light in your room.",
            "Use pots with drainage holes.",
        )),
        ("power-drill", "What should I know before using a power drill?", (
            "Match the bit to the material, such as masonry bits for brick and wood bits for timber.",
            "Mark the spot, start slowly to stop the bit from wandering, and keep the drill straight.",
            "Scan for hidden pipes and cables with a detector before drilling into walls.",
        )),
        ("squeaky-door", "How do I fix a squeaky door?", (
            "Lift each hinge pin, wipe it clean, and coat it with a little lubricant or petroleum jelly.",
            "Open and close the door several times to spread the lubricant.",
            "Tighten loose hinge screws, since a sagging door also squeaks.",
        )),
        ("clean-grout", "How do I clean grout?", (
            "Scrub the grout with a paste of baking soda and water using a stiff brush.",
            "Use an oxygen bleach solution for stubborn stains, then rinse well.",
            "Seal the grout once it is clean and dry to keep stains out.",
        )),
        ("smoke-alarms", "How often should I test smoke alarms?", (
            "Test smoke alarms once a month by pressing the test button.",
            "Replace batteries at least once a year, and replace the whole alarm every ten years.",
            "Fit an alarm on every floor and near sleeping areas.",
        )),
        ("vegetable-garden", "How do I start a small vegetable garden?", (
            "Choose a sunny spot with at least six hours of direct light and start small with a few raised beds or containers.",
            "Begin with easy crops such as lettuce, radishes, herbs and tomatoes.",
            "Water deeply in the morning and add compost to the soil each season.",
        )),
    ],
    "fitness": [
        ("start-running", "How do I start running?", (
            "Begin with run-walk intervals, such as one minute running and two minutes walking, three times a week.",
            "Increase total running time gradually, by about ten percent a week.",
            "Run at an easy pace where you can still hold a conversation.",
        )),
        ("build-muscle", "How do I build muscle?", (
            "Train each muscle group two or three times a week with progressive overload, adding weight or reps over time.",
            "Eat enough protein, roughly 1.6 grams per kilogram of body weight a day.",
            "Sleep seven to nine hours, since muscle repairs during rest.",
        )),
        ("stretch-before", "Should I stretch before exercise?", (
            "Do dynamic movements such as leg swings and lunges before exercise to warm up.",
            "Save long static stretches for after the workout or a separate session.",
            "A warm-up of five to ten minutes raises body temperature and reduces injury risk.",
        )),
        ("push-ups", "How do I get better at push-ups?", (
            "Practise push-ups several times a week, starting on an incline or your knees if needed.",
            "Keep a straight line from head to heels and lower your chest close to the floor.",
            "Add a few reps each week or a set of slow negatives.",
        )),
        ("lose-fat", "How do I lose body fat?", (
            "Fat loss requires eating fewer calories than you burn, ideally through a small daily deficit.",
            "High-protein meals and plenty of vegetables keep you full while eating less.",
            "Strength training preserves muscle while you lose fat.",
        )),
        ("rest-days", "How many rest days do I need?", (
            "Most people benefit from one or two rest days a week.",
            "Alternate hard and easy sessions so muscles recover between heavy efforts.",
            "Persistent soreness, poor sleep and falling performance signal that you need more rest.",
        )),
        ("no-equipment", "What is a good workout without equipment?", (
            "Combine squats, push-ups, lunges, planks and glute bridges in a circuit.",
            "Do each exercise for forty seconds with twenty seconds of rest, repeating the circuit three times.",
            "Make it harder by slowing the tempo or switching to single-leg variations.",
        )),
        ("gym-beginner", "How should a beginner start at the gym?", (
            "Start with a full-body routine three times a week built on squats, presses, rows and hinges.",
            "Learn the movements with light weights before adding load.",
            "Log every workout so you can track progress.",
        )),
        ("runner-knee", "What should I do about knee pain from running?", (
            "Reduce mileage and avoid the activities that trigger the pain while it settles.",
            "Strengthen hips and thighs, and check that your shoes are not worn out.",
            "See a physiotherapist if the pain lasts more than two weeks.",
        )),
        ("cardio-or-weights", "Is cardio or weight training better?", (
            "Both matter, since cardio improves heart and lung fitness while weight training builds strength and muscle.",
            "Health guidelines recommend 150 minutes of moderate cardio and two strength sessions a week.",
            "Choose the mix based on your goals and what you will keep doing.",
        )),
        ("protein-needs", "How much protein do I need?", (
            "Most adults need about 0.8 grams per kilogram of body weight a day, and active people benefit from 1.2 to 2 grams.",
            "Spread protein across meals rather than eating it all at once.",
            "Eggs, dairy, legumes, fish and meat are good sources.",
        )),
        ("exercise-motivation", "How do I stay motivated to exercise?", (
            "Schedule workouts like appointments and pick activities you enjoy.",
            "Set small, specific goals and track them so progress is visible.",
            "Training with a friend or group adds accountability.",
        )),
        ("flexibility", "How can I improve my flexibility?", (
            "Stretch the target muscles for thirty seconds at a time, most days of the week.",
            "Stretch when warm, such as after exercise or a shower.",
            "Yoga or mobility routines improve flexibility and control together.",
        )),
    ],
    "learning": [
        ("remember-study", "How can I remember what I study?", (
            "Test yourself instead of rereading, because retrieval practice strengthens memory.",
            "Space reviews out over days and weeks instead of cramming.",
            "Explain the material in your own words as if teaching someone.",
        )),
        ("new-language", "How do I learn a new language?", (
            "Practise a little every day with spaced repetition for vocabulary and regular listening.",
            "Speak early, even with mistakes, through a tutor or a language exchange partner.",
            "Consume content you enjoy in the language, such as shows, podcasts and books.",
        )),
        ("focus", "How do I focus while studying?", (
            "Put the phone in another room and work in focused blocks of about twenty-five minutes.",
            "Decide on a specific task for each block.",
            "Take short breaks between blocks and a longer one every couple of hours.",
        )),
        ("note-taking", "What is the best way to take notes?", (
            "Write notes in your own words rather than copying, since processing ideas aids memory.",
            "Use a consistent structure, such as headings and a summary at the end of each page.",
            "Review and condense your notes within a day.",
        )),
        ("speed-reading", "Does speed reading work?", (
            "Most speed reading techniques trade comprehension for speed.",
            "Skimming is useful for finding what matters, but deep understanding needs normal reading.",
            "Reading more often is the dependable way to read faster with good comprehension.",
        )),
        ("procrastination", "How do I stop procrastinating?", (
            "Break the task into a first step so small it takes under five minutes, and start it now.",
            "Remove distractions and commit to a short timed session.",
            "Procrastination is often about avoiding a feeling, so noticing that feeling helps.",
        )),
        ("learn-guitar", "How do I learn to play guitar?", (
            "Practise fifteen to thirty minutes daily, focusing on a few chords and clean changes between them.",
            "Learn songs you like early, since playing real music keeps motivation high.",
            "Use a metronome and consider a few lessons to avoid bad habits.",
        )),
        ("online-courses", "How do I finish online courses?", (
            "Set a fixed weekly schedule and treat the sessions like a class you cannot miss.",
            "Apply what you learn in a small project so the material sticks.",
            "Join the course forum or find a study buddy for accountability.",
        )),
        ("maths", "How can I get better at maths?", (
            "Rebuild the foundations first, since gaps in earlier topics make later ones feel impossible.",
            "Work through many problems yourself rather than only reading solutions.",
            "When stuck, review a worked example and then try a similar problem.",
        )),
        ("exam-prep", "How should I prepare for an exam?", (
            "Start reviewing at least two weeks before and work through past papers under timed conditions.",
            "Focus extra time on the topics you find hardest.",
            "Sleep well the night before instead of studying late.",
        )),
        ("reading-habit", "How do I build a reading habit?", (
            "Read a few pages at the same time every day, such as before bed.",
            "Keep a book with you and choose books you enjoy, not only ones you feel you should read.",
            "Track what you read to build momentum.",
        )),
        ("child-reading", "How do I help my child learn to read?", (
            "Read aloud together every day and talk about the pictures and story.",
            "Teach letter sounds with playful games and point to words as you read.",
            "Let them choose books that interest them.",
        )),
        ("critical-thinking", "How can I improve my critical thinking?", (
            "Question the source and evidence behind a claim before accepting it.",
            "Look for alternative explanations and the strongest argument on the other side.",
            "Learn common logical fallacies and cognitive biases so you can spot them.",
        )),
    ],
}

TOPIC_EXTRAS: dict[str, tuple[str, ...]] = {
    "cooking": (
        "Good cooking is mostly about controlling heat, time and seasoning, and these steps give you control over all three.",
        "Taste as you go, because small adjustments along the way are easier than fixing a dish at the end.",
        "Writing down what worked each time turns a one-off success into a dependable habit in the kitchen.",
        "Quality ingredients make a noticeable difference, yet technique matters even more for the final result.",
    ),
    "travel": (
        "Most travel problems come from rushed planning, so a little preparation before departure saves a lot of stress later.",
        "Keeping digital and paper copies of your key documents gives you a backup if something goes wrong.",
        "Local tourism websites and recent traveller reviews are useful sources for up-to-date details.",
        "Building a small buffer of time and money into the plan leaves room for the unexpected.",
    ),
    "programming": (
        "In software, small tested steps tend to beat large rewrites, because each step is easy to check and easy to undo.",
        "Reading the official documentation alongside examples gives you both the rules and how people apply them in practice.",
        "Version control lets you experiment freely, since any change can be rolled back.",
        "Automating repetitive checks frees your attention for the parts of the problem that need real thought.",
    ),
    "health": (
        "Health habits work best when they fit into your daily routine, since consistency matters more than intensity.",
        "Individual needs vary with age, medical history and lifestyle, so a doctor or pharmacist can tailor this advice.",
        "Small changes add up over weeks and months, even when the difference is hard to notice day to day.",
        "Tracking a habit for a couple of weeks shows you what is working and what to adjust.",
    ),
    "finance": (
        "Personal finance rewards steady habits more than clever tricks, so automating good decisions goes a long way.",
        "Fees and interest compound over time in the same way that returns do, which makes them worth tracking.",
        "Reviewing your accounts once a month keeps surprises small and easy to fix.",
        "A licensed financial adviser can help with decisions that depend on your tax situation.",
    ),
    "science": (
        "This explanation is a simplified version of the physics and chemistry involved, yet it captures the main mechanism.",
        "Scientists built this understanding through repeated measurements and experiments over many decades.",
        "The same principle shows up in other everyday phenomena once you know to look for it.",
        "Textbooks and museum websites offer diagrams that make the mechanism easier to picture.",
    ),
    "history": (
        "Historians continue to debate the relative weight of each factor, and new evidence keeps refining the picture.",
        "Primary sources from the period, such as letters and official records, show how people experienced these events.",
        "Understanding the wider context of the era helps explain why events unfolded the way they did.",
        "Many museums and university courses offer free material for anyone curious to read further.",
    ),
    "career": (
        "Career progress usually comes from many small, visible contributions rather than one big moment.",
        "Asking a mentor or a trusted colleague for feedback speeds up learning in any role.",
        "Keeping a running record of your achievements makes reviews, applications and negotiations much easier.",
        "Every workplace has its own norms, so adapt this advice to your industry and culture.",
    ),
    "relationships": (
        "Relationships tend to improve through small, repeated actions rather than grand gestures.",
        "Clear, kind communication prevents most misunderstandings before they grow.",
        "Every person and situation is different, so adjust this advice to the people involved.",
        "A counsellor or therapist can offer support when patterns feel hard to change alone.",
    ),
    "home": (
        "Having the right tools ready before you begin turns most household jobs into a short, tidy task.",
        "Safety gear such as gloves and eye protection is cheap and prevents the most common injuries.",
        "Hardware store staff and manufacturer guides are useful sources for product-specific advice.",
        "Regular small maintenance prevents bigger and more expensive repairs later.",
    ),
    "fitness": (
        "Progress in fitness comes from consistent training over months, with gradual increases in difficulty.",
        "Good form matters more than heavy weights or high speed, especially when you are starting out.",
        "Recovery, sleep and nutrition shape results as much as the workouts themselves.",
        "A qualified coach or physiotherapist can tailor a plan to your body and goals.",
    ),
    "learning": (
        "Learning research shows that active effort, such as testing and explaining, beats passive review.",
        "Short, regular sessions usually work better than long, irregular ones.",
        "Progress often feels slow at first and then speeds up as the foundations settle.",
        "Finding a community of fellow learners adds motivation and a source of help.",
    ),
}

GENERIC_EXTRAS: tuple[str, ...] = (
    "To put this in context, the steps above address the most common causes and solutions.",
    "In practice, starting with the first step and building from there works for most people.",
    "It also helps to review the outcome after a week or two and adjust the approach.",
    "These points apply in most situations, although details vary from case to case.",
    "Each step builds on the previous one, so following them in order gives the best result.",
)

TOPIC_FOLLOWUPS: dict[str, tuple[str, ...]] = {
    "cooking": (
        "What ingredients and equipment do you have on hand?",
        "Are you cooking for yourself or for a group?",
        "Which part of the recipe usually gives you trouble?",
    ),
    "travel": (
        "Where are you planning to travel, and for how long?",
        "Is this your first trip of this kind?",
        "What budget do you have in mind for the trip?",
    ),
    "programming": (
        "Which language and tools are you using?",
        "Could you share the code or error message you are seeing?",
        "What have you tried so far?",
    ),
    "health": (
        "How long has this been going on for you?",
        "Do you have any medical conditions I should keep in mind?",
        "What does your current routine look like?",
    ),
    "finance": (
        "Which country are you in, since the rules differ?",
        "What are your main financial goals right now?",
        "How much flexibility do you have in your monthly budget?",
    ),
    "science": (
        "Would you like a deeper explanation of the underlying mechanism?",
        "Is this for a class or out of curiosity?",
        "Which part would you like me to expand on?",
    ),
    "history": (
        "Are you interested in a particular aspect, such as the politics or daily life?",
        "Is this for a class or for your own interest?",
        "Would you like some book recommendations on this period?",
    ),
    "career": (
        "What field are you working in?",
        "How far along are you in this process?",
        "What outcome would you be happiest with?",
    ),
    "relationships": (
        "How long has this been going on?",
        "How does the other person see the situation?",
        "What have you tried so far?",
    ),
    "home": (
        "What kind of home and tools are you working with?",
        "Have you done a job like this before?",
        "Is this a rented or an owned property?",
    ),
    "fitness": (
        "What is your current activity level?",
        "What goal are you training toward?",
        "How many days a week can you train?",
    ),
    "learning": (
        "What subject are you learning right now?",
        "How much time can you set aside each week?",
        "What has worked for you in the past?",
    ),
}

TOPIC_QUIPS: dict[str, tuple[str, ...]] = {
    "cooking": (
        "Worst case, you order a pizza and call it research, haha.",
        "A watched pot never boils, but an unwatched one boils over, which is the oldest kitchen joke there is.",
    ),
    "travel": (
        "Jet lag is just your body insisting it is still on holiday somewhere else, haha.",
        "Your shoulders are not paid enough to carry a third pair of shoes (just kidding, they are not paid at all).",
    ),
    "programming": (
        "It worked on my machine, which as every programmer jokes is the highest standard of testing.",
        "The two hardest things in programming are naming things, cache invalidation and off-by-one errors, haha.",
    ),
    "health": (
        "Your body is like a phone, in that it works much better after a proper recharge, haha.",
        "An apple a day keeps the doctor away, at least if you throw it hard enough (just kidding).",
    ),
    "finance": (
        "Money does not grow on trees, which is a shame, because I would be an excellent gardener, haha.",
        "Compound interest is the one time being boring pays off, pun intended.",
    ),
    "science": (
        "I would tell you a chemistry joke, but all the good ones argon.",
        "Never trust atoms, since they make up everything, haha.",
    ),
    "history": (
        "I have a joke about ancient Rome, but it is a bit dated, haha.",
        "Those who forget the past are doomed to repeat the exam (just kidding).",
    ),
    "career": (
        "Coffee is technically a career skill at this point, haha.",
        "Think of your resume as a dating profile for employers, minus the beach photos (just kidding).",
    ),
    "relationships": (
        "Communication is key, which is also why my houseplants and I get along so well, haha.",
        "Relationships are like software, in that they need regular updates and nobody reads the terms (just kidding).",
    ),
    "home": (
        "Measure twice and cut once, or in my case measure five times and still call a friend, haha.",
        "DIY stands for Do It Yourself, though it often ends up as Do It Twice (just kidding).",
    ),
    "fitness": (
        "The hardest exercise is still getting off the sofa, haha.",
        "I tried running once, but my couch filed a missing person report (just kidding).",
    ),
    "learning": (
        "My brain has too many tabs open, so spaced repetition is tab management for the mind, haha.",
        "Studying is like exercise for the brain, except nobody posts gym selfies of it (just kidding).",
    ),
}

PROMPTS: list[PromptEntry] = [
    PromptEntry(f"{topic}.{slug}", topic, question, content)
    for topic, entries in _RAW.items()
    for slug, question, content in entries
]
TOPICS: list[str] = list(_RAW)

_BY_ID = {p.prompt_id: p for p in PROMPTS}


def get_prompt(prompt_id: str) -> PromptEntry:
    """Look up a prompt by its stable id, e.g. ``"cooking.fluffy-rice"``."""
    return _BY_ID[prompt_id]

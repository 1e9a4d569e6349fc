"""The encoder-decoder of the "NLP From Scratch: Translation with a Sequence to Sequence Network"
tutorial, one sentence at a time: ``EncoderRNN``/``DecoderRNN`` with Embedding + GRU, hidden state
from ``torch.zeros(1, 1, hidden_size, device=device)``, inputs from
``torch.tensor(indexes, dtype=torch.long, device=device).view(-1, 1)``, teacher forcing by a fixed
schedule, greedy decoding with ``topk(1)`` and ``.squeeze().detach()``, NLLLoss summed per step."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
SOS_token, EOS_token = 0, 1
PAIRS = [("ich bin kalt", "i am cold"), ("er ist gross", "he is tall"), ("sie ist klug", "she is smart"),
         ("ich bin muede", "i am tired"), ("er ist kalt", "he is cold"), ("wir sind hier", "we are here")]  # fmt: skip


class Lang:
    def __init__(self):
        self.word2index = {}
        self.n_words = 2

    def add_sentence(self, sentence):
        for word in sentence.split(" "):
            if word not in self.word2index:
                self.word2index[word] = self.n_words
                self.n_words += 1


INPUT_LANG, OUTPUT_LANG = Lang(), Lang()
for _src, _tgt in PAIRS:
    INPUT_LANG.add_sentence(_src)
    OUTPUT_LANG.add_sentence(_tgt)


def tensor_from_sentence(lang, sentence):
    indexes = [lang.word2index[word] for word in sentence.split(" ")]
    indexes.append(EOS_token)
    return torch.tensor(indexes, dtype=torch.long, device=device).view(-1, 1)


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size):
        super(EncoderRNN, self).__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size)

    def forward(self, input, hidden):
        embedded = self.embedding(input).view(1, 1, -1)
        output = embedded
        output, hidden = self.gru(output, hidden)
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, 1, self.hidden_size, device=device)


class DecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size):
        super(DecoderRNN, self).__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        output = self.embedding(input).view(1, 1, -1)
        output = F.relu(output)
        output, hidden = self.gru(output, hidden)
        output = self.softmax(self.out(output[0]))
        return output, hidden


class Seq2Seq(nn.Module):
    def __init__(self, hidden_size=24):
        super().__init__()
        self.encoder = EncoderRNN(INPUT_LANG.n_words, hidden_size)
        self.decoder = DecoderRNN(hidden_size, OUTPUT_LANG.n_words)


def train_pair(input_tensor, target_tensor, model, optimizers, criterion, teacher_forcing):
    encoder_hidden = model.encoder.initHidden()
    for opt in optimizers:
        opt.zero_grad()
    loss = 0
    for ei in range(input_tensor.size(0)):
        encoder_output, encoder_hidden = model.encoder(input_tensor[ei], encoder_hidden)
    decoder_input = torch.tensor([[SOS_token]], device=device)
    decoder_hidden = encoder_hidden
    for di in range(target_tensor.size(0)):
        decoder_output, decoder_hidden = model.decoder(decoder_input, decoder_hidden)
        loss += criterion(decoder_output, target_tensor[di])
        if teacher_forcing:
            decoder_input = target_tensor[di]
        else:
            topv, topi = decoder_output.topk(1)
            decoder_input = topi.squeeze().detach()
            if decoder_input.item() == EOS_token:
                break
    loss.backward()
    for opt in optimizers:
        opt.step()
    return loss.item() / target_tensor.size(0)


def build():
    return Seq2Seq()


def train(model, stochastic=False):
    encoder_optimizer = optim.SGD(model.encoder.parameters(), lr=0.05)
    decoder_optimizer = optim.SGD(model.decoder.parameters(), lr=0.05)
    criterion = nn.NLLLoss()
    rng = np.random.default_rng(9)
    total = 0.0
    for it in range(1, 61):
        src, tgt = PAIRS[int(rng.integers(len(PAIRS)))]
        teacher_forcing = rng.random() < 0.5 if stochastic else it % 2 == 0
        loss = train_pair(tensor_from_sentence(INPUT_LANG, src), tensor_from_sentence(OUTPUT_LANG, tgt), model,
                          [encoder_optimizer, decoder_optimizer], criterion, teacher_forcing)  # fmt: skip
        total += loss
        if it % 20 == 0:
            print("%d %.4f" % (it, total / 20))
            last, total = total / 20, 0.0
    return last
